using Supervisor.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Supervisor.Tests.Integration;

/// <summary>
/// systemd's notify protocol (a unit with Type=notify), heard on a real NOTIFY_SOCKET: what the service
/// manager is told across a start, a reload, an abandoned reload and a stop, and that workers are told nothing.
/// </summary>
public sealed class SystemdTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Systemd_hears_ready_once_the_workers_serve_reloading_then_ready_around_each_reload_and_stopping_last()
    {
        using var app = await AppFolder.CopyOfTestAppAsync();
        await using var notify = NotifySocket.Open();
        var environment = new Dictionary<string, string> { ["NOTIFY_SOCKET"] = notify.Path, ["WATCHDOG_USEC"] = "1000000" };
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, app.AppPath, ["--workers", "2"], environment);

        // READY=1 only once the first generation serves: its STATUS is the pool's state when it was sent.
        var ready = await notify.NextStateAsync(Timeout);
        Assert.Equal("READY=1", NotifySocket.StateOf(ready));
        Assert.Equal("2/2 workers ready, generation 1", NotifySocket.Field(ready, "STATUS"));

        // The service manager's variables are the supervisor's: an app calling UseSystemd would otherwise speak for it.
        using (var client = supervisor.CreateClient())
        {
            foreach (var name in new[] { "NOTIFY_SOCKET", "WATCHDOG_USEC" })
            {
                Assert.Equal("", await client.GetStringAsync($"/env/{name}"));
            }
        }

        // A reload: RELOADING=1 stamped with the monotonic clock at the HUP, then READY=1 once the new generation serves.
        var beforeHup = Posix.MonotonicMicroseconds();
        var lines = supervisor.LineCount;
        supervisor.Signal(Posix.SIGHUP);
        var reloading = await notify.NextStateAsync(Timeout);
        var afterReloading = Posix.MonotonicMicroseconds();
        Assert.Equal("RELOADING=1", NotifySocket.StateOf(reloading));
        var stamp = long.Parse(NotifySocket.Field(reloading, "MONOTONIC_USEC") ?? "-1");
        Assert.InRange(stamp, beforeHup, afterReloading);
        ready = await notify.NextStateAsync(Timeout);
        Assert.Equal("READY=1", NotifySocket.StateOf(ready));
        Assert.Equal("2/2 workers ready, generation 2", NotifySocket.Field(ready, "STATUS"));
        await supervisor.WaitForLogAsync("Reload complete: generation 2 serving", Timeout, lines);

        // An abandoned reload ends the reloading state too: systemd is told the old generation serves on.
        app.SetSetting("TESTAPP_FAIL_AT_START", "startup failed on purpose");
        lines = supervisor.LineCount;
        supervisor.Signal(Posix.SIGHUP);
        Assert.Equal("RELOADING=1", NotifySocket.StateOf(await notify.NextStateAsync(Timeout)));
        ready = await notify.NextStateAsync(Timeout);
        Assert.Equal("READY=1", NotifySocket.StateOf(ready));
        Assert.Equal("2/2 workers ready, generation 2", NotifySocket.Field(ready, "STATUS"));
        await supervisor.WaitForLogAsync("Reload failed: generation 3 abandoned, generation 2 keeps serving", Timeout, lines);

        supervisor.Signal(Posix.SIGTERM);
        Assert.Equal("STOPPING=1", NotifySocket.StateOf(await notify.NextStateAsync(Timeout)));
        Assert.Equal(0, await supervisor.WaitForExitAsync(Timeout));

        var received = notify.Received;
        output.WriteLine(string.Join(Environment.NewLine, received.Select(message => message.Replace('\n', ' '))));
        Assert.Equal(["READY=1", "RELOADING=1", "READY=1", "RELOADING=1", "READY=1", "STOPPING=1"],
            received.Select(NotifySocket.StateOf).OfType<string>());
        // WatchdogSec=1 asks for WATCHDOG=1 at least every second; the arbiter's loop sends it every half.
        Assert.True(received.Count(message => message == "WATCHDOG=1") >= 2, "no WATCHDOG=1 came while the loop turned");
    }
}
