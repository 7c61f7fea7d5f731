using System.Net;
using System.Text.RegularExpressions;
using Supervisor.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Supervisor.Tests.Integration;

/// <summary>--admin-bind: the probes a load balancer, Docker or Kubernetes would poll, through a reload and a stop.</summary>
public sealed class HealthEndpointTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Readyz_stays_200_through_a_reload_and_turns_503_the_moment_a_graceful_stop_begins()
    {
        var artifacts = await Artifacts.GetAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp,
            "--workers", "2", "--admin-bind", "127.0.0.1:0", "--graceful-timeout", "30");
        using var probe = await ProbeAsync(supervisor);
        Assert.Equal("live\n", await probe.GetStringAsync("/livez"));
        Assert.Equal("ready: 2 workers in rotation\n", await probe.GetStringAsync("/readyz"));
        // Never on the public side.
        using var client = supervisor.CreateClient();
        Assert.NotEqual("live\n", await (await client.GetAsync("/livez")).Content.ReadAsStringAsync());

        // Polled as a load balancer would, all through a reload: never once not ready.
        var lines = supervisor.LineCount;
        supervisor.Signal(Posix.SIGHUP);
        var complete = supervisor.WaitForLogAsync("Reload complete: generation 2 serving", Timeout, lines);
        var polls = 0;
        while (!complete.IsCompleted)
        {
            using var answer = await probe.GetAsync("/readyz");
            Assert.True(answer.StatusCode == HttpStatusCode.OK, $"/readyz answered {(int)answer.StatusCode} during the reload: {await answer.Content.ReadAsStringAsync()}");
            polls++;
        }
        await complete; // bounded by Timeout: throws if the reload never completed
        output.WriteLine($"{polls} polls of /readyz during the reload, all 200");

        // A stop: from its first moment the load balancer is told to send nothing more, while a request in flight finishes.
        lines = supervisor.LineCount;
        var inFlight = client.GetAsync("/slow?ms=3000");
        await supervisor.WaitForLogAsync("slow request started", Timeout, lines);
        supervisor.Signal(Posix.SIGTERM);
        var deadline = DateTime.UtcNow + Timeout;
        string readiness;
        do
        {
            using var answer = await probe.GetAsync("/readyz");
            readiness = $"{(int)answer.StatusCode} {await answer.Content.ReadAsStringAsync()}";
        }
        while (readiness != "503 the supervisor is stopping\n" && DateTime.UtcNow < deadline);
        Assert.Equal("503 the supervisor is stopping\n", readiness);
        Assert.False(inFlight.IsCompleted, "the request in flight ended before the stop was seen: nothing was shown");
        Assert.Equal("live\n", await probe.GetStringAsync("/livez"));
        Assert.Equal(HttpStatusCode.OK, (await inFlight).StatusCode);
        Assert.Equal(0, await supervisor.WaitForExitAsync(Timeout));
    }

    [Fact]
    public async Task Metrics_pass_promtool_and_count_what_was_sent()
    {
        var artifacts = await Artifacts.GetAsync();
        // One request at a time per worker: a third slow one waits in the supervisor's queue.
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "2", "--admin-bind", "127.0.0.1:0", "--worker-connections", "1");
        using var probe = await ProbeAsync(supervisor);
        using var client = supervisor.CreateClient();
        const int sent = 30;
        await GetOkAsync(client, sent);
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/no-such-page")).StatusCode);
        var lines = supervisor.LineCount;
        supervisor.Signal(Posix.SIGHUP);
        await supervisor.WaitForLogAsync("Reload complete: generation 2 serving", Timeout, lines);
        await probe.GetStringAsync("/readyz"); // the probes' own requests are not counted

        var metrics = await probe.GetStringAsync("/metrics");
        output.WriteLine(metrics);
        await AssertPromtoolPassesAsync(metrics);

        Assert.Equal(sent, PrometheusText.Sample(metrics, "http_server_request_duration_seconds_count", "http_response_status_code=\"200\""));
        Assert.Equal(1, PrometheusText.Sample(metrics, "http_server_request_duration_seconds_count", "http_response_status_code=\"404\""));
        Assert.Equal(1, PrometheusText.Sample(metrics, "supervisor_reloads_total", "result=\"completed\""));
        Assert.Equal(2, PrometheusText.Sample(metrics, "supervisor_workers_ready", ""));
        Assert.Equal(2, PrometheusText.Sample(metrics, "supervisor_workers", "state=\"serving\""));
        Assert.Equal(0, PrometheusText.Sample(metrics, "supervisor_workers", "state=\"booting\""));
        Assert.Equal(0, PrometheusText.Sample(metrics, "supervisor_requests_in_flight", ""));
        // Each serving worker's memory by slot, and all worker processes' together (the old generation may still drain).
        var bySlot = Enumerable.Range(0, 2).Select(slot => PrometheusText.Sample(metrics, "supervisor_worker_memory_bytes", $"slot=\"{slot}\"")).ToList();
        Assert.All(bySlot, bytes => Assert.InRange(bytes, 10 << 20, 4L << 30));
        Assert.InRange(PrometheusText.Sample(metrics, "supervisor_workers_memory_bytes", ""), bySlot.Sum(), 8L << 30);

        // Two slow requests at the two workers, a third waiting for one of them.
        using var slowClient = supervisor.CreateClient();
        var slow = Enumerable.Range(0, 3).Select(_ => slowClient.GetAsync("/slow?ms=60000")).ToList();
        static (double InFlight, double Queued) Waiting(string metrics) =>
            (PrometheusText.Sample(metrics, "supervisor_requests_in_flight", ""), PrometheusText.Sample(metrics, "supervisor_requests_queued", ""));
        Assert.Equal((2.0, 1.0), Waiting(await MetricsOnceAsync(probe, metrics => Waiting(metrics) == (2, 1))));
    }

    [Theory]
    [InlineData(ForwardingPath.Kernel)]
    [InlineData(ForwardingPath.Handoff)]
    public async Task In_worker_modes_metrics_count_the_requests_the_workers_served_a_recycled_one_included(ForwardingPath path)
    {
        var artifacts = await Artifacts.GetAsync();
        // One keep-alive connection: one worker serves the first 20 and is recycled; the rest go to another.
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp,
            ["--workers", "2", "--admin-bind", "127.0.0.1:0", "--max-requests", "20", .. path.Arguments()]);
        using var probe = await ProbeAsync(supervisor);
        using var client = supervisor.CreateClient();
        const int sent = 30;
        await GetOkAsync(client, sent);
        await supervisor.WaitForLogAsync(@"Worker exiting \(pid: \d+\): worker \d, generation \d+, recycled: --max-requests reached", Timeout);

        // The workers report their totals with each heartbeat (once a second) and as they stop.
        var metrics = await MetricsOnceAsync(probe, metrics => PrometheusText.Sample(metrics, "supervisor_worker_requests_total", "") >= sent);
        output.WriteLine(metrics);
        Assert.Equal(sent, PrometheusText.Sample(metrics, "supervisor_worker_requests_total", ""));
        Assert.Equal(1, PrometheusText.Sample(metrics, "supervisor_worker_replacements_total", "reason=\"max_requests\""));
        // The front served none of them: its request metrics count nothing.
        Assert.Equal(0, PrometheusText.Sample(metrics, "http_server_request_duration_seconds_count", ""));
        await AssertPromtoolPassesAsync(metrics);
    }

    private static async Task<HttpClient> ProbeAsync(SupervisorProcess supervisor) =>
        new() { BaseAddress = await supervisor.AdminAddressAsync(Timeout), Timeout = Timeout };

    private static async Task GetOkAsync(HttpClient client, int count)
    {
        for (var i = 0; i < count; i++)
        {
            Assert.Equal("ok", await client.GetStringAsync("/"));
        }
    }

    // Polls /metrics until it shows what is awaited, within Timeout: the last text read either way.
    private static async Task<string> MetricsOnceAsync(HttpClient probe, Func<string, bool> awaited)
    {
        var deadline = DateTime.UtcNow + Timeout;
        string metrics;
        do
        {
            metrics = await probe.GetStringAsync("/metrics");
        }
        while (!awaited(metrics) && DateTime.UtcNow < deadline);
        return metrics;
    }

    private async Task AssertPromtoolPassesAsync(string metrics)
    {
        var check = await ExternalTool.RunAsync(output, "promtool", ["check", "metrics"], standardInput: metrics);
        Assert.True(check.ExitCode == 0, $"promtool check metrics: {check.StandardOutput}{check.StandardError}");
    }
}
