using Supervisor.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Supervisor.Tests.Integration;

/// <summary>SIGTTIN / SIGTTOU change the number of live workers, never below one, under load and during a reload.</summary>
public sealed class ScalingTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Ttin_and_ttou_resize_the_pool_under_mixed_load_draining_first_during_a_reload_too_and_never_below_one()
    {
        using var app = await AppFolder.CopyOfTestAppAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, app.AppPath, "--workers", "2");
        await using var load = MixedLoad.Start(supervisor.BaseAddress);
        await load.WaitForEveryKindAsync(1, Bound);

        // TTIN: a third worker, and it serves.
        supervisor.Signal(Posix.SIGTTIN);
        var added = int.Parse((await supervisor.WaitForLogAsync(@"Worker 2 ready \(pid: (\d+)", Bound)).Groups[1].Value);
        await Eventually.TrueAsync(() => load.Outcomes.Any(outcome => outcome.WorkerPid == added && !outcome.Failed), Bound, "the added worker serves");
        Assert.Equal(3, ProcessTree.RunningChildren(supervisor.Pid));

        // TTOU: the last slot's worker leaves rotation, finishes what it was given, then exits.
        supervisor.Signal(Posix.SIGTTOU);
        await supervisor.WaitForLogAsync("Number of workers: 3 -> 2", Bound);
        await Eventually.TrueAsync(() => new PoolLog(supervisor.Log) is var exited && exited.SeenBy(added) is not null && exited.GivenTo(added) is not null,
            Bound, "the removed worker has exited and said how many requests it saw");
        var log = new PoolLog(supervisor.Log);
        Assert.Matches($@"Worker exiting \(pid: {added}\): worker 2, generation 1, fewer workers \(SIGTTOU\)", supervisor.Log);
        Assert.Equal(log.GivenTo(added), log.SeenBy(added));

        // TTIN during a reload: the new generation boots for the slots there were, then grows by one.
        app.SetSetting("TESTAPP_START_DELAY_MS", "800");
        var linesBefore = supervisor.LineCount;
        supervisor.Signal(Posix.SIGHUP);
        await supervisor.WaitForLogAsync("Reloading: booting generation 2", Bound, linesBefore);
        supervisor.Signal(Posix.SIGTTIN);
        await supervisor.WaitForLogAsync(@"A reload is running: the number of workers changes by \+1 once it has ended", Bound, linesBefore);
        await supervisor.WaitForLogAsync(@"Reload complete: generation 2 serving \(pids \d+, \d+\)", Bound, linesBefore);
        await supervisor.WaitForLogAsync(@"Worker 2 ready \(pid: \d+, generation 2\)", Bound, linesBefore);
        log = new PoolLog(supervisor.Log);
        Assert.True(log.LineMatching("Reload complete: generation 2") < log.LineMatching("Number of workers: 2 -> 3", linesBefore), "the pool grew before the reload ended");

        // Down to one, and never below.
        supervisor.Signal(Posix.SIGTTOU);
        await supervisor.WaitForLogAsync("Number of workers: 3 -> 2", Bound, linesBefore);
        supervisor.Signal(Posix.SIGTTOU);
        await supervisor.WaitForLogAsync("Number of workers: 2 -> 1", Bound, linesBefore);
        supervisor.Signal(Posix.SIGTTOU);
        await supervisor.WaitForLogAsync("Not removing the last worker", Bound, linesBefore);
        await Eventually.TrueAsync(() => ProcessTree.RunningChildren(supervisor.Pid) == 1, Bound, "one worker left");
        await load.WaitForEveryKindAsync(1, Bound);
        await load.StopAsync();
        output.WriteLine($"load: {load.Summary()}");
        load.AssertAllIntact();

        using var client = supervisor.CreateClient();
        var last = await WhoAmI.GetAsync(client);
        Assert.Equal("0", last.WorkerId);
    }
}
