using System.Text.RegularExpressions;
using Supervisor.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Supervisor.Tests.Integration;

/// <summary>SIGHUP under load: new code from disk, every worker replaced, no request lost, and a bad deploy rolled back.</summary>
public sealed class ReloadTests(ITestOutputHelper output)
{
    private static readonly TimeSpan ReloadTimeout = TimeSpan.FromSeconds(60);

    [Theory]
    [InlineData(ForwardingPath.Default)]
    [InlineData(ForwardingPath.Http1Workers)]
    // Handoff mode stands for kernel mode here: a recycle and a reload drain a worker by the same code in
    // both (drain, Connection: close, the worker's own request count); only how connections arrive
    // differs, which the kill and client-address tests run in each. The suite's 10 minutes decide it.
    [InlineData(ForwardingPath.Handoff)]
    public async Task Sighup_under_mixed_load_replaces_every_worker_overlapped_serves_the_new_code_and_loses_no_request(ForwardingPath path)
    {
        var artifacts = await Artifacts.GetAsync();
        using var app = await AppFolder.CopyOfTestAppAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, app.AppPath, ["--workers", "2", .. path.Arguments()]);
        using var client = supervisor.CreateClient();
        Assert.StartsWith("1.0.0 ", await client.GetStringAsync("/version"));
        var previousPids = supervisor.BootedWorkerPids.ToHashSet();
        var generations = new List<(HashSet<int> Old, HashSet<int> New, int CompleteLine)>();
        var peakWorkers = 0;

        await using var load = MixedLoad.Start(supervisor.BaseAddress);
        await load.WaitForEveryKindAsync(1, ReloadTimeout);
        // Two reloads on the default path (new code, then the same code again); one on the others, which
        // differ in how requests reach the workers, not in what a second reload does (suite time).
        var lastGeneration = path == ForwardingPath.Default ? 3 : 2;
        for (var generation = 2; generation <= lastGeneration; generation++)
        {
            if (generation == 2)
            {
                app.DeployAssembly(artifacts.TestAppVersion2);
            }
            var linesBefore = supervisor.LineCount;
            supervisor.Signal(Posix.SIGHUP);
            var reloadComplete = supervisor.WaitForLogAsync($@"Reload complete: generation {generation} serving \(pids ([\d, ]+)\)", ReloadTimeout, linesBefore);
            while (!reloadComplete.IsCompleted)
            {
                peakWorkers = Math.Max(peakWorkers, ProcessTree.RunningChildren(supervisor.Pid));
                await Task.WhenAny(reloadComplete, Task.Delay(20));
            }
            var newPids = (await reloadComplete).Groups[1].Value.Split(", ").Select(int.Parse).ToHashSet();
            generations.Add((previousPids, newPids, new PoolLog(supervisor.Log).LineMatching($"Reload complete: generation {generation} ")));

            Assert.Equal(2, newPids.Count);
            Assert.Empty(newPids.Intersect(previousPids));
            // The mix goes on with the new generation: a long request, a WebSocket session, a stream each finish again.
            await load.WaitForEveryKindAsync(1, ReloadTimeout);
            await Eventually.TrueAsync(() => previousPids.All(pid => !Posix.IsAlive(pid)), ReloadTimeout, "the old generation has exited");
            previousPids = newPids;
        }
        await load.StopAsync();

        output.WriteLine($"load: {load.Summary()}; peak workers {peakWorkers}");
        load.AssertAllIntact();
        Assert.InRange(peakWorkers, 2, 4); // Never above 2N.
        // Overlapped: each new worker was ready before the reload completed, and each old one exited after it,
        // having been given exactly the requests it says it saw.
        await Eventually.TrueAsync(() => generations.SelectMany(g => g.Old).All(pid => new PoolLog(supervisor.Log).SeenBy(pid) is not null),
            ReloadTimeout, "every replaced worker has said how many requests it saw");
        var log = new PoolLog(supervisor.Log);
        foreach (var (old, replacements, completeLine) in generations)
        {
            Assert.All(replacements, pid => Assert.InRange(log.ReadyLine(pid), 0, completeLine - 1));
            Assert.All(old, pid => Assert.True(log.ExitLine(pid) > completeLine, $"worker {pid} exited on line {log.ExitLine(pid)}, before the reload completed on line {completeLine}"));
            Assert.All(old, pid => Assert.Equal(log.GivenTo(pid), log.SeenBy(pid)));
        }
        for (var i = 0; i < 20; i++)
        {
            var version = await client.GetStringAsync("/version");
            Assert.StartsWith("2.0.0 ", version);
            Assert.Contains(int.Parse(version.Split(' ')[^1]), previousPids);
        }
    }

    [Theory]
    [InlineData(ForwardingPath.Default)]
    [InlineData(ForwardingPath.Handoff)] // A generation enters rotation only when all of it is ready: the same code in kernel mode.
    public async Task A_reload_whose_workers_fail_at_start_keeps_the_old_generation_serving_until_a_fixed_reload(ForwardingPath path)
    {
        using var app = await AppFolder.CopyOfTestAppAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, app.AppPath, ["--workers", "2", .. path.Arguments()]);
        var servingPids = supervisor.BootedWorkerPids.ToHashSet();
        await using var load = MixedLoad.Start(supervisor.BaseAddress);
        await load.WaitForEveryKindAsync(1, ReloadTimeout);

        app.SetSetting("TESTAPP_FAIL_AT_START", "startup failed: connection string 'orders' is missing");
        var linesBefore = supervisor.LineCount;
        supervisor.Signal(Posix.SIGHUP);
        await supervisor.WaitForLogAsync("Reload failed: generation 2 abandoned, generation 1 keeps serving", ReloadTimeout, linesBefore);
        Assert.Contains("connection string 'orders' is missing", supervisor.Log);

        await load.WaitForEveryKindAsync(1, ReloadTimeout);
        Assert.All(servingPids, pid => Assert.True(Posix.IsAlive(pid)));
        using (var client = supervisor.CreateClient())
        {
            Assert.Contains(int.Parse((await client.GetStringAsync("/version")).Split(' ')[^1]), servingPids);
        }
        // No crash loop: the failed generation is not retried by itself.
        Assert.Single(Regex.Matches(supervisor.Log, "Reloading: booting generation"));

        app.SetSetting("TESTAPP_FAIL_AT_START", null);
        app.SetSetting("Release", "fixed");
        linesBefore = supervisor.LineCount;
        supervisor.Signal(Posix.SIGHUP);
        await supervisor.WaitForLogAsync("Reload complete: generation 3 serving", ReloadTimeout, linesBefore);
        await load.WaitForEveryKindAsync(1, ReloadTimeout);
        await load.StopAsync();

        output.WriteLine($"load: {load.Summary()}");
        load.AssertAllIntact();
        using var fixedClient = supervisor.CreateClient();
        Assert.Contains(" fixed ", await fixedClient.GetStringAsync("/version"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_reload_whose_workers_never_become_ready_is_abandoned_at_the_boot_timeout()
    {
        using var app = await AppFolder.CopyOfTestAppAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, app.AppPath, "--workers", "2", "--boot-timeout", "3");
        await using var load = MixedLoad.Start(supervisor.BaseAddress);
        await load.WaitForEveryKindAsync(1, ReloadTimeout);

        app.SetSetting("TESTAPP_START_DELAY_MS", "600000");
        var linesBefore = supervisor.LineCount;
        supervisor.Signal(Posix.SIGHUP);
        await Eventually.TrueAsync(() => supervisor.BootedWorkerPidsSince(linesBefore).Count == 2, TimeSpan.FromSeconds(10), "the new generation is booting");
        var candidates = supervisor.BootedWorkerPidsSince(linesBefore);
        await supervisor.WaitForLogAsync("Reload failed: generation 2 abandoned", ReloadTimeout, linesBefore);
        Assert.Contains("was not ready within 3 s", supervisor.Log);
        await Eventually.TrueAsync(() => candidates.All(pid => !Posix.IsAlive(pid)), TimeSpan.FromSeconds(5), "the abandoned workers are killed");

        await load.WaitForEveryKindAsync(1, ReloadTimeout);
        await load.StopAsync();
        output.WriteLine($"load: {load.Summary()}");
        load.AssertAllIntact();
    }

    [Fact]
    public async Task A_burst_of_sighups_under_load_coalesces_and_leaves_exactly_n_workers()
    {
        var artifacts = await Artifacts.GetAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "2");
        var descriptorsBefore = ProcessTree.OpenSocketsAndPipes(supervisor.Pid);
        var linesBefore = supervisor.LineCount;

        // The worker count is sampled from the first signal until the last reload has ended, not only
        // while the signals are sent: the second reload runs after the burst.
        using var sampling = new CancellationTokenSource();
        var peakWorkers = SamplePeakAsync(() => ProcessTree.RunningChildren(supervisor.Pid), sampling.Token);
        await using (var load = LoadGenerator.Start(supervisor.BaseAddress, "/", connections: 8))
        {
            await load.WaitForMoreSuccessesAsync(200, TimeSpan.FromSeconds(20));
            // Paced a little, so the kernel delivers many of them rather than merging them all into one.
            for (var i = 0; i < 100; i++)
            {
                supervisor.Signal(Posix.SIGHUP);
                await Task.Delay(2);
            }
            await supervisor.WaitForLogAsync("Reload complete: generation \\d+ serving .*; none pending", ReloadTimeout, linesBefore);
            await load.WaitForMoreSuccessesAsync(200, TimeSpan.FromSeconds(20));
            await load.StopAsync();
            output.WriteLine($"load: {load.Summary()}");
            Assert.Equal(0, load.Failed);
        }
        await Eventually.TrueAsync(() => ProcessTree.RunningChildren(supervisor.Pid) == 2, TimeSpan.FromSeconds(15), "exactly 2 workers are left");
        await sampling.CancelAsync();

        var handled = Regex.Count(supervisor.Log, "Handling signal: hup");
        var reloadsStarted = Regex.Count(supervisor.Log, "Reloading: booting generation");
        // At most one reload runs and one waits: the whole burst is the running reload and the one waiting,
        // plus one more for each reload that ended while the burst was still arriving.
        var endedDuringBurst = ReloadsEndedBeforeLastHup(supervisor.Log);
        output.WriteLine($"{handled} SIGHUPs handled, {reloadsStarted} reloads run, {endedDuringBurst} of them ended before the last SIGHUP");
        Assert.True(handled >= 50, $"only {handled} SIGHUPs reached the supervisor: the burst did not test coalescing");
        Assert.InRange(reloadsStarted, 1, endedDuringBurst + 2);
        AssertReloadsNeverOverlap(supervisor.Log);
        Assert.InRange(await peakWorkers, 2, 4); // Never above 2N.
        Assert.Equal(0, ProcessTree.ZombieChildren(supervisor.Pid));
        // The replaced workers' control connections and output pipes are closed at once; the proxy's pooled
        // connections to them when its pool scavenger next runs (every 15 s). Idle pooled connections to the
        // new workers (at most one per client connection) may remain above the idle start.
        var descriptorsAfter = 0;
        await Eventually.TrueAsync(() => (descriptorsAfter = ProcessTree.OpenSocketsAndPipes(supervisor.Pid)) <= descriptorsBefore + 8, TimeSpan.FromSeconds(40),
            $"sockets and pipes back near {descriptorsBefore}");
        output.WriteLine($"sockets and pipes: {descriptorsBefore} at start, {descriptorsAfter} at the end");
    }

    private static async Task<int> SamplePeakAsync(Func<int> sample, CancellationToken stop)
    {
        var peak = 0;
        while (!stop.IsCancellationRequested)
        {
            peak = Math.Max(peak, sample());
            try
            {
                await Task.Delay(10, stop); // A sampling period, not a wait for an event.
            }
            catch (OperationCanceledException)
            {
            }
        }
        return Math.Max(peak, sample());
    }

    private static int ReloadsEndedBeforeLastHup(string log)
    {
        var lastHup = log.LastIndexOf("Handling signal: hup", StringComparison.Ordinal);
        return Regex.Count(log[..lastHup], "Reload complete|Reload failed");
    }

    private static void AssertReloadsNeverOverlap(string log)
    {
        var running = false;
        foreach (Match line in Regex.Matches(log, "Reloading: booting generation|Reload complete|Reload failed"))
        {
            var starts = line.Value.StartsWith("Reloading", StringComparison.Ordinal);
            Assert.False(starts && running, "a reload started while another was still running");
            running = starts;
        }
    }
}
