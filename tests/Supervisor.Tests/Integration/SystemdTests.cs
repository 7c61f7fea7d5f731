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

    [Fact]
    public async Task A_socket_activated_supervisor_serves_the_passed_socket_from_the_connection_that_woke_it_and_keeps_it_from_its_workers()
    {
        var artifacts = await Artifacts.GetAsync();
        var port = LoopbackClient.FreePort();
        // systemd-socket-activate (Debian's systemd) holds the socket as a .socket unit would, and execs the
        // supervisor with LISTEN_FDS=1 and LISTEN_PID when the first connection comes.
        await using var supervisor = await SupervisorProcess.StartAsync(output, artifacts.TestApp, ["--workers", "1"], environment: null,
            launcher: ["systemd-socket-activate", "-l", $"127.0.0.1:{port}"]);
        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = Timeout };
        await supervisor.WaitForLogAsync($@"Listening on 127\.0\.0\.1:{port} as 3", Timeout);

        Assert.Equal("ok", await client.GetStringAsync("/"));
        await supervisor.WaitForLogAsync($@"Listening at: http://127\.0\.0\.1:{port} \(fd 3\)", Timeout);
        Assert.DoesNotContain("is not used: systemd passed", supervisor.Log);
        Assert.Equal("", await client.GetStringAsync("/env/LISTEN_FDS"));

        // The passed socket is the supervisor's alone: a worker holding it would keep a dead supervisor's port accepting.
        var listener = SocketInode(supervisor.Pid, 3);
        var worker = supervisor.BootedWorkerPids.Single();
        Assert.DoesNotContain(listener, OpenDescriptors(worker));

        supervisor.Signal(Posix.SIGTERM);
        Assert.Equal(0, await supervisor.WaitForExitAsync(Timeout));
    }

    [Fact]
    public async Task A_restart_under_keep_alive_load_refuses_no_connection_while_the_socket_is_held_for_it()
    {
        var artifacts = await Artifacts.GetAsync();
        var port = LoopbackClient.FreePort();
        var stop = Path.Combine(Path.GetTempPath(), $"sup-activation-stop-{Guid.NewGuid():N}");
        // The holder restarts the supervisor whenever it exits, as systemd's Restart= would, passing it the
        // socket each time with LISTEN_PID set to the new process.
        // systemd-socket-activate passes on no environment but what -E names.
        await using var holder = await SupervisorProcess.StartAsync(output, artifacts.TestApp, ["--workers", "1"], environment: null,
            launcher: ["systemd-socket-activate", "-l", $"127.0.0.1:{port}", "-E", $"STOP_FILE={stop}", "sh", "-c",
                """while [ ! -e "$STOP_FILE" ]; do sh -c 'export LISTEN_PID=$$; exec "$0" "$@"' "$0" "$@"; done"""]);
        try
        {
            await holder.WaitForLogAsync($@"Listening on 127\.0\.0\.1:{port} as 3", Timeout);
            await using var load = LoadGenerator.Start(new Uri($"http://127.0.0.1:{port}"), "/", connections: 8);
            await load.WaitForMoreSuccessesAsync(200, Timeout);
            var first = await ServingSupervisorAsync(holder, 0);

            Posix.Kill(first, Posix.SIGTERM);
            await holder.WaitForLogAsync(@"Shutting down: Master", Timeout);
            var restartedAt = holder.LineCount;
            var second = await ServingSupervisorAsync(holder, 1);
            await holder.WaitForLogAsync("All 1 workers ready", Timeout, restartedAt);
            await load.WaitForMoreSuccessesAsync(200, Timeout);
            await load.StopAsync();

            output.WriteLine($"load across the restart ({first} -> {second}): {load.Summary()}");
            Assert.NotEqual(first, second);
            Assert.Equal(0, load.Failed);

            await File.WriteAllTextAsync(stop, "");
            Posix.Kill(second, Posix.SIGTERM);
            Assert.Equal(0, await holder.WaitForExitAsync(Timeout));
            await holder.WaitForLogAsync("Shutting down: Master", Timeout, restartedAt);
        }
        finally
        {
            // Whatever failed, the holder restarts nothing more and the supervisor it runs stops.
            await File.WriteAllTextAsync(stop, "");
            foreach (var (pid, _) in ProcessTree.ChildrenOf(holder.Pid))
            {
                Posix.Kill(pid, Posix.SIGTERM);
            }
            await holder.WaitForExitAsync(Timeout);
            File.Delete(stop);
        }
    }

    // The pid in the n-th "Listening at: ... (PID)" line: each supervisor the holder started logs one.
    private static async Task<int> ServingSupervisorAsync(SupervisorProcess holder, int nth)
    {
        await Eventually.TrueAsync(() => ListeningPids(holder).Count > nth, Timeout, $"supervisor {nth + 1} listening");
        return ListeningPids(holder)[nth];
    }

    private static List<int> ListeningPids(SupervisorProcess holder) =>
        [.. System.Text.RegularExpressions.Regex.Matches(holder.Log, @"Listening at: \S+ \(fd 3\) \((\d+)\)").Select(match => int.Parse(match.Groups[1].Value))];

    private static string SocketInode(int pid, int descriptor) => new FileInfo($"/proc/{pid}/fd/{descriptor}").LinkTarget ?? "";

    private static IEnumerable<string> OpenDescriptors(int pid) =>
        Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd").Select(path => new FileInfo(path).LinkTarget ?? "");
}
