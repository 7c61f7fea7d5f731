using System.Net;
using System.Text.RegularExpressions;
using Supervisor.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Supervisor.Tests.Integration;

/// <summary>Workers replaced under load (max-requests), killed when frozen (--timeout), slow requests cut at the proxy.</summary>
public sealed class RecyclingTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Max_requests_recycles_workers_dozens_of_times_under_keep_alive_load_without_a_failed_request()
    {
        var artifacts = await Artifacts.GetAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp,
            "--workers", "2", "--max-requests", "40", "--max-requests-jitter", "40");
        var peakWorkers = 0;

        await using (var load = LoadGenerator.Start(supervisor.BaseAddress, connections: 8))
        {
            await Eventually.TrueAsync(() =>
            {
                peakWorkers = Math.Max(peakWorkers, ProcessTree.RunningChildren(supervisor.Pid));
                return Regex.Count(supervisor.Log, "Recycled worker") >= 24;
            }, TimeSpan.FromSeconds(90), "24 recycles");
            await load.StopAsync();
            output.WriteLine($"load: {load.Summary()}");
            Assert.Equal(0, load.Failed);
            Assert.True(load.Succeeded > 1000, load.Summary());
        }

        // Jitter: each worker drew its own limit between 40 and 80.
        var limits = Regex.Matches(supervisor.Log, @"served (\d+) requests, --max-requests").Select(m => int.Parse(m.Groups[1].Value)).ToList();
        Assert.All(limits, limit => Assert.InRange(limit, 40, 80));
        Assert.True(limits.Distinct().Count() >= 5, $"recycle points should spread, got {string.Join(",", limits)}");
        // Overlapped, one recycle per slot at a time: at most old + replacement per slot.
        Assert.InRange(peakWorkers, 2, 4);
    }

    [Fact]
    public async Task A_worker_above_max_memory_is_recycled_overlapped_without_a_failed_request()
    {
        var artifacts = await Artifacts.GetAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "2", "--max-memory", "300");
        using var client = supervisor.CreateClient();
        await using var load = LoadGenerator.Start(supervisor.BaseAddress, "/", connections: 4);
        await load.WaitForMoreSuccessesAsync(100, TimeSpan.FromSeconds(20));

        var holding = await client.GetStringAsync("/allocate?mb=400");
        var bloated = int.Parse(holding.Split(' ')[^1]);
        await supervisor.WaitForLogAsync($@"Recycling worker \d \(pid: {bloated}, generation 1\): resident memory \d+ MB above --max-memory 300 MB", TimeSpan.FromSeconds(15));
        await supervisor.WaitForLogAsync($@"Recycled worker \d: pid {bloated} replaced by pid \d+", SupervisorProcess.StartTimeout);
        await Eventually.TrueAsync(() => !Posix.IsAlive(bloated), TimeSpan.FromSeconds(10), "the bloated worker has exited");
        await load.WaitForMoreSuccessesAsync(100, TimeSpan.FromSeconds(20));
        await load.StopAsync();

        output.WriteLine($"load: {load.Summary()}");
        Assert.Equal(0, load.Failed);
        Assert.Single(System.Text.RegularExpressions.Regex.Matches(supervisor.Log, "Recycling worker"));
    }

    [Fact]
    public async Task A_frozen_worker_is_killed_within_the_timeout_and_replaced()
    {
        var artifacts = await Artifacts.GetAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "2", "--timeout", "2");
        var victim = supervisor.BootedWorkerPids[0];
        var linesBefore = supervisor.LineCount;

        var frozenAt = TimeProvider.System.GetTimestamp();
        Posix.Kill(victim, Posix.SIGSTOP);
        await supervisor.WaitForLogAsync($@"WORKER TIMEOUT \(pid: {victim}\)", TimeSpan.FromSeconds(10), linesBefore);
        var detected = TimeProvider.System.GetElapsedTime(frozenAt);
        await Eventually.TrueAsync(() => !Posix.IsAlive(victim), TimeSpan.FromSeconds(2), "the frozen worker is killed");
        var killed = TimeProvider.System.GetElapsedTime(frozenAt);

        output.WriteLine($"timeout logged after {detected.TotalMilliseconds:F0} ms, process gone after {killed.TotalMilliseconds:F0} ms");
        Assert.True(killed <= TimeSpan.FromSeconds(3), $"killed after {killed.TotalSeconds:F2} s; --timeout 2 allows 3");
        await supervisor.WaitForLogAsync(@"Worker 0 ready \(pid: \d+", SupervisorProcess.StartTimeout, linesBefore);
        using var client = supervisor.CreateClient();
        Assert.Equal("ok", await client.GetStringAsync("/"));
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
}
