using System.Diagnostics;
using System.Net;
using System.Text.RegularExpressions;
using Supervisor.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Supervisor.Tests.Integration;

/// <summary>Workers replaced under load (max-requests), killed when frozen (--timeout), slow requests cut at the proxy.</summary>
public sealed class RecyclingTests(ITestOutputHelper output)
{
    // Boots on a loaded 2-core machine take 1-3 s each; eight of them, two at a time, fit well inside.
    private static readonly TimeSpan RecyclesTimeout = TimeSpan.FromSeconds(120);

    [Theory]
    [InlineData(ForwardingPath.Default)]
    [InlineData(ForwardingPath.Http1Workers)]
    // Handoff mode stands for kernel mode here: a recycle and a reload drain a worker by the same code in
    // both (drain, Connection: close, the worker's own request count); only how connections arrive
    // differs, which the kill and client-address tests run in each. The suite's 10 minutes decide it.
    [InlineData(ForwardingPath.Handoff)]
    public async Task Max_requests_recycles_workers_again_and_again_overlapped_under_mixed_load_without_a_failed_request(ForwardingPath path)
    {
        var artifacts = await Artifacts.GetAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp,
            ["--workers", "2", "--max-requests", "40", "--max-requests-jitter", "40", .. path.Arguments()]);

        await using (var load = MixedLoad.Start(supervisor.BaseAddress))
        {
            await Eventually.TrueAsync(() => Regex.Count(supervisor.Log, "Recycled worker") >= 6, RecyclesTimeout, "6 recycles");
            await load.WaitForEveryKindAsync(1, RecyclesTimeout);
            await load.StopAsync();
            output.WriteLine($"load: {load.Summary()}");
            load.AssertAllIntact();
        }

        await WaitForRecyclesToEndAsync(supervisor);
        var log = new PoolLog(supervisor.Log);
        var recycles = log.Recycles();
        foreach (var recycle in recycles)
        {
            // Overlapped: the replacement served before the old worker left rotation, which it left before exiting.
            Assert.True(recycle.Overlapped, $"not overlapped: {recycle}");
            // Each worker drew its own limit between 40 and 80, and was recycled once given that many requests;
            // it goes on taking requests until its replacement is ready. The supervisor's count is the app's own.
            var limit = Assert.IsType<int>(log.DrawnRequestLimit(recycle.OldPid));
            Assert.InRange(limit, 40, 80);
            var given = Assert.IsType<long>(log.GivenTo(recycle.OldPid));
            Assert.True(given >= limit, $"worker {recycle.OldPid} was recycled after {given} requests, below its limit {limit}");
            Assert.Equal(given, log.SeenBy(recycle.OldPid));
        }
        var limits = recycles.Select(recycle => log.DrawnRequestLimit(recycle.OldPid)).Distinct().ToList();
        // Six or more draws from 41 values: fewer than 3 distinct happens about once in 50,000 runs.
        Assert.True(limits.Count >= 3, $"recycle points should spread, got {string.Join(",", limits)}");
    }

    [Fact]
    public async Task A_replacement_that_fails_to_boot_leaves_the_old_worker_serving_and_the_recycle_is_tried_again()
    {
        using var app = await AppFolder.CopyOfTestAppAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, app.AppPath, "--workers", "1", "--max-requests", "100", "--max-requests-jitter", "0");
        var old = supervisor.BootedWorkerPids.Single();
        // A deploy gone wrong under the running worker: workers started from now on fail at start.
        app.SetSetting("TESTAPP_FAIL_AT_START", "startup failed: the database is unreachable");
        await using var load = MixedLoad.Start(supervisor.BaseAddress);

        await supervisor.WaitForLogAsync($@"Recycling worker 0 \(pid: {old}, generation 1\): --max-requests reached: 100", RecyclesTimeout);
        await supervisor.WaitForLogAsync("Worker 0 failed 2 times in a row; next start in 1 s", RecyclesTimeout);
        Assert.Contains("the database is unreachable", supervisor.Log);
        Assert.True(Posix.IsAlive(old), "the worker being recycled should serve on while its replacement cannot boot");
        await load.WaitForEveryKindAsync(1, RecyclesTimeout);

        // Fixed: the next try succeeds, and the recycle completes as usual.
        app.SetSetting("TESTAPP_FAIL_AT_START", null);
        await supervisor.WaitForLogAsync($@"Recycled worker 0: pid {old} replaced by pid \d+", RecyclesTimeout);
        await load.WaitForEveryKindAsync(1, RecyclesTimeout);
        await load.StopAsync();
        output.WriteLine($"load: {load.Summary()}");
        load.AssertAllIntact();
        await WaitForRecyclesToEndAsync(supervisor);
        // The load goes on past the first recycle, so its replacement may be recycled in turn.
        Assert.All(new PoolLog(supervisor.Log).Recycles(), recycle => Assert.True(recycle.Overlapped, $"not overlapped: {recycle}"));
        Assert.DoesNotContain("out of rotation", supervisor.Log); // A replacement that never booted was never in it.
    }

    [Fact]
    public async Task A_worker_above_max_memory_is_recycled_overlapped_without_a_failed_request()
    {
        var artifacts = await Artifacts.GetAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "2", "--max-memory", "300");
        using var client = supervisor.CreateClient();
        await using var load = MixedLoad.Start(supervisor.BaseAddress);
        await load.WaitForEveryKindAsync(1, RecyclesTimeout);

        var holding = await client.GetStringAsync("/allocate?mb=400");
        var bloated = int.Parse(holding.Split(' ')[^1]);
        await supervisor.WaitForLogAsync($@"Recycling worker \d \(pid: {bloated}, generation 1\): resident memory \d+ MB above --max-memory 300 MB", TimeSpan.FromSeconds(15));
        await supervisor.WaitForLogAsync($@"Recycled worker \d: pid {bloated} replaced by pid \d+", SupervisorProcess.StartTimeout);
        await load.WaitForEveryKindAsync(1, RecyclesTimeout);
        await load.StopAsync();
        output.WriteLine($"load: {load.Summary()}");
        load.AssertAllIntact();

        await WaitForRecyclesToEndAsync(supervisor);
        var recycle = Assert.Single(new PoolLog(supervisor.Log).Recycles());
        Assert.True(recycle.Overlapped, $"not overlapped: {recycle}");
        Assert.False(Posix.IsAlive(bloated));
    }

    [Theory]
    [InlineData(ForwardingPath.Default)]
    [InlineData(ForwardingPath.Handoff)]
    [InlineData(ForwardingPath.Kernel)] // Where the other worker must also not wait for it to accept (FairAccept).
    public async Task A_frozen_worker_is_killed_within_the_timeout_and_replaced_under_mixed_load_costing_only_what_it_held(ForwardingPath path)
    {
        var artifacts = await Artifacts.GetAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, ["--workers", "2", "--timeout", "2", "--admin-bind", "127.0.0.1:0", .. path.Arguments()]);
        var admin = await supervisor.AdminAddressAsync(RecyclesTimeout);
        var victim = supervisor.BootedWorkerPids[0];
        var linesBefore = supervisor.LineCount;
        await using var load = MixedLoad.Start(supervisor.BaseAddress);
        await load.WaitForEveryKindAsync(1, RecyclesTimeout);

        var frozenAt = Stopwatch.GetTimestamp();
        Posix.Kill(victim, Posix.SIGSTOP);
        await supervisor.WaitForLogAsync($@"WORKER TIMEOUT \(pid: {victim}\)", TimeSpan.FromSeconds(10), linesBefore);
        var detectedAt = Stopwatch.GetTimestamp();
        await Eventually.TrueAsync(() => !Posix.IsAlive(victim), TimeSpan.FromSeconds(5), "the frozen worker is killed");
        var goneAt = Stopwatch.GetTimestamp();
        var killed = Stopwatch.GetElapsedTime(frozenAt);
        output.WriteLine($"timeout logged after {Stopwatch.GetElapsedTime(frozenAt, detectedAt).TotalMilliseconds:F0} ms, process gone after {killed.TotalMilliseconds:F0} ms");
        // --timeout 2, checked every 250 ms by the arbiter; the rest is SIGKILL, the exit, and this test's polling.
        Assert.True(killed <= TimeSpan.FromSeconds(4), $"killed after {killed.TotalSeconds:F2} s; --timeout 2 allows 2.25, and this allows 4 for a loaded machine");

        await supervisor.WaitForLogAsync(@"Worker 0 ready \(pid: \d+", SupervisorProcess.StartTimeout, linesBefore);
        await load.WaitForEveryKindAsync(2, RecyclesTimeout);
        await load.StopAsync();
        output.WriteLine($"load: {load.Summary()}");
        if (path.WorkersServeClients())
        {
            // Its clients' connections die with it: whatever was sent on them until it was gone.
            load.AssertIntactExcept(MixedLoad.DoomedByDeathOfKernelWorker(victim, goneAt), resendsAllowed: load.HttpLanes);
        }
        else
        {
            // What the frozen worker held is lost with it, but for the GETs it never answered: those are sent again.
            load.AssertIntactExcept(MixedLoad.DoomedByDeathOf(victim, detectedAt));
        }
        // Counted as a timeout, not as a crash.
        using var probe = new HttpClient { BaseAddress = admin, Timeout = RecyclesTimeout };
        var metrics = await probe.GetStringAsync("/metrics");
        Assert.Equal(1, PrometheusText.Sample(metrics, "supervisor_worker_replacements_total", "reason=\"timeout\""));
        Assert.Equal(0, PrometheusText.Sample(metrics, "supervisor_worker_replacements_total", "reason=\"exited\""));
    }

    [Fact]
    public async Task A_slow_request_gets_504_at_the_request_timeout_and_its_worker_lives_on()
    {
        var artifacts = await Artifacts.GetAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "1", "--request-timeout", "1", "--timeout", "2");
        using var client = supervisor.CreateClient();
        var worker = supervisor.BootedWorkerPids.Single();

        var started = TimeProvider.System.GetTimestamp();
        using var response = await client.GetAsync("/slow?ms=5000");
        var elapsed = TimeProvider.System.GetElapsedTime(started);

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.InRange(elapsed, TimeSpan.FromSeconds(0.9), TimeSpan.FromSeconds(2.5));
        // Past --timeout: a live worker keeps its heartbeat while a request is slow, so it is not killed.
        await Task.Delay(TimeSpan.FromSeconds(3)); // Waiting out a span of time is the point here.
        Assert.Equal(worker, (await WhoAmI.GetAsync(client)).Pid);
        Assert.DoesNotContain("WORKER TIMEOUT", supervisor.Log);
    }

    /// <summary>
    /// Waits until every worker being recycled has been replaced, has exited and has said how many requests
    /// it saw. Each drains its slow requests (3 s at most) after leaving rotation, and a replacement may
    /// still be booting when the load stops.
    /// </summary>
    private static async Task WaitForRecyclesToEndAsync(SupervisorProcess supervisor) =>
        await Eventually.TrueAsync(() =>
        {
            var log = new PoolLog(supervisor.Log);
            return log.RecyclingPids().All(pid => log.GivenTo(pid) is not null && log.SeenBy(pid) is not null);
        }, RecyclesTimeout, "every worker being recycled has been replaced, has exited and has said how many requests it saw");
}
