using System.Net;
using Supervisor.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Supervisor.Tests.Integration;

/// <summary>
/// The front's own HTTP/2 client to the workers, which carries every request without a body: what
/// YARP and HttpClient did for those requests before must still hold. Large downloads and WebSockets
/// are in WorkerProtocolTests.
/// </summary>
public sealed class WorkerClientTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _scratch = Directory.CreateTempSubdirectory("sup-client-").FullName;

    public void Dispose() => Directory.Delete(_scratch, recursive: true);

    [Fact]
    public async Task A_download_and_its_trailers_reach_an_http2_client_intact()
    {
        var artifacts = await Artifacts.GetAsync();
        var (certFile, keyFile, thumbprint) = TestCertificate.Create(_scratch);
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "1", "--certfile", certFile, "--keyfile", keyFile);
        using var client = TestCertificate.CreateClient(supervisor.BaseAddress, thumbprint);

        using var request = new HttpRequestMessage(HttpMethod.Get, "/download?mb=16") { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        response.EnsureSuccessStatusCode();
        var body = await response.Content.ReadAsByteArrayAsync();

        Assert.Equal(16 * 1_048_576, body.Length);
        // The app sends byte p as p % 251.
        Assert.Equal(-1, Enumerable.Range(0, body.Length).FirstOrDefault(i => body[i] != (byte)(i % 251), -1));
        Assert.Equal(["16777216"], response.TrailingHeaders.GetValues("x-sent"));
    }

    [Fact]
    public async Task More_requests_at_once_than_one_connection_may_carry_are_all_served()
    {
        var artifacts = await Artifacts.GetAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "1");
        using var client = supervisor.CreateClient();

        // Kestrel allows 100 streams per HTTP/2 connection: 250 at once need three connections to the worker.
        var responses = await Task.WhenAll(Enumerable.Range(0, 250).Select(_ => client.GetStringAsync("/slow?ms=2000")));

        Assert.All(responses, response => Assert.StartsWith("slept 2000 ms", response, StringComparison.Ordinal));
        var peak = responses.Max(response => int.Parse(response.Split(' ')[^3], System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(peak > 100, $"at most {peak} requests reached the worker at once");
    }

    [Fact]
    public async Task A_client_that_leaves_in_the_middle_of_a_response_stops_the_worker_writing_it()
    {
        var artifacts = await Artifacts.GetAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "1");
        using var client = supervisor.CreateClient();

        using (var leaving = supervisor.CreateClient())
        {
            using var response = await leaving.GetAsync("/stream", HttpCompletionOption.ResponseHeadersRead);
            await using var body = await response.Content.ReadAsStreamAsync();
            var buffer = new byte[1_048_576];
            await body.ReadAtLeastAsync(buffer, buffer.Length);
        } // Disposing the client closes its connection mid-response.

        var abandoned = await Eventually.ValueAsync(
            () => client.GetStringAsync("/stream/abandoned"),
            value => value == "1",
            TimeSpan.FromSeconds(10),
            "the worker saw the endless response abandoned");
        Assert.Equal("1", abandoned);
        Assert.Equal("ok", await client.GetStringAsync("/"));
    }

    [Fact]
    public async Task Header_blocks_larger_than_a_frame_pass_both_ways_request_after_request()
    {
        var artifacts = await Artifacts.GetAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "1");
        using var client = supervisor.CreateClient();

        // 3 x 7,000 characters of request fields and 24 x 1,000 of response fields: each block spans
        // two or more HTTP/2 frames of 16 KB. Repeated, so the worker's HPACK table fills and evicts.
        for (var attempt = 0; attempt < 5; attempt++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/headers?n=24");
            for (var i = 0; i < 3; i++)
            {
                request.Headers.Add($"X-Fill-{i}", new string((char)('k' + i), 7000));
            }
            using var response = await client.SendAsync(request);
            response.EnsureSuccessStatusCode();
            Assert.Equal("21000", await response.Content.ReadAsStringAsync());
            for (var i = 0; i < 24; i++)
            {
                Assert.Equal(new string((char)('a' + i % 26), 1000), Assert.Single(response.Headers.GetValues($"x-fill-{i}")));
            }
        }
    }

    [Fact]
    public async Task A_get_in_flight_at_a_worker_that_dies_is_sent_again_and_served_by_its_replacement()
    {
        var artifacts = await Artifacts.GetAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "1");
        using var client = supervisor.CreateClient();
        var worker = supervisor.BootedWorkerPids.Single();

        var inFlight = client.GetAsync("/slow?ms=1000");
        await supervisor.WaitForLogAsync("slow request started", TimeSpan.FromSeconds(10));
        Posix.Kill(worker, Posix.SIGKILL);

        // Idempotent, and nothing of its response had come: sent again once (RFC 9110 9.2.2), as nginx does.
        using var response = await inFlight;
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.DoesNotContain($"in {worker}", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        await supervisor.WaitForLogAsync(@"Request GET /slow\?ms=1000 was in flight at worker \S+ when worker \S+ closed its connection, before any of the response came; sending it again", TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task A_post_in_flight_at_a_worker_that_dies_gets_a_502_and_the_log_a_reason()
    {
        var artifacts = await Artifacts.GetAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "1");
        using var client = supervisor.CreateClient();
        var worker = supervisor.BootedWorkerPids.Single();

        // No body: the front's own client carries it. Not idempotent: never sent twice.
        var inFlight = client.PostAsync("/slow?ms=20000", content: null);
        await supervisor.WaitForLogAsync("slow request started", TimeSpan.FromSeconds(10));
        Posix.Kill(worker, Posix.SIGKILL);

        using var response = await inFlight;
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        await supervisor.WaitForLogAsync($@"POST /slow\?ms=20000 to worker \S+ answered 502: worker \S+ closed its connection", TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task Connections_the_worker_closes_when_idle_are_replaced_without_a_failed_request()
    {
        var artifacts = await Artifacts.GetAsync();
        // The worker's Kestrel closes an HTTP/2 connection idle for its keep-alive timeout (GOAWAY): 0.5 s
        // here instead of 130. Kestrel adds its once-a-second heartbeat to every timeout and checks on that
        // beat, so the close comes 1.5 s or more after the last request (2.3 to 3 s, seen here).
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "1", "--env", "TESTAPP_KEEPALIVE_MS=500");
        using var client = supervisor.CreateClient();

        // The pauses sweep that window, so that some rounds are sent just as the worker closes the
        // connection (the race under test).
        var connections = new HashSet<string>(await RoundAsync());
        for (var pause = 1500; pause <= 3100; pause += 400)
        {
            await Task.Delay(pause); // Idleness is what is under test.
            connections.UnionWith(await RoundAsync());
        }
        // Then rounds 3 s apart until one went on a new connection: on a loaded machine the worker's
        // heartbeat can come late, and the test must have seen at least one close.
        if (connections.Count < 2)
        {
            await Eventually.ValueAsync(async () =>
            {
                await Task.Delay(3000);
                connections.UnionWith(await RoundAsync());
                return connections.Count;
            }, count => count >= 2, TimeSpan.FromSeconds(30), "a round on a connection the worker had closed");
        }

        // Every request succeeded (GetStringAsync throws otherwise), and the worker closed connections under them.
        output.WriteLine($"{connections.Count} connections");

        Task<string[]> RoundAsync() => Task.WhenAll(Enumerable.Range(0, 20).Select(_ => client.GetStringAsync("/connection")));
    }
}
