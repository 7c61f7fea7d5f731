using System.Net;
using Supervisor.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Supervisor.Tests.Integration;

/// <summary>
/// USR2, Gunicorn's binary upgrade, as an operator runs it: a supervisor installed in a directory of its
/// own, a new build put in its place, <c>kill -USR2</c>, under traffic of every kind. A broken build,
/// or one whose workers cannot boot, changes nothing; a good one serves the same addresses (TCP, unix:, the health endpoints) from a new
/// process, and the old one drains and exits without failing a request.
/// </summary>
public sealed class BinaryUpgradeTests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private readonly string _scratch = Directory.CreateTempSubdirectory("sup-upgrade-").FullName;

    public void Dispose() => Directory.Delete(_scratch, recursive: true);

    [Theory]
    [InlineData(ForwardingPath.Default)]
    // Two dealers accept on the same sockets until the old one stops; a new supervisor that fails closes
    // its copies without stopping them for the old one.
    [InlineData(ForwardingPath.Handoff)]
    // The new workers accept on the same handed-over sockets, inherited instead of dealt, beside the old.
    [InlineData(ForwardingPath.Kernel)]
    public async Task Usr2_under_mixed_load_hands_the_sockets_to_the_binary_on_disk_and_a_build_that_cannot_serve_changes_nothing(ForwardingPath path)
    {
        var artifacts = await Artifacts.GetAsync();
        using var app = await AppFolder.CopyOfTestAppAsync();
        var installed = Install(artifacts.Supervisor);
        var pidfile = Path.Combine(_scratch, "supervisor.pid");
        var socketDirectory = Path.Combine(_scratch, "run");
        var unixFront = Path.Combine(_scratch, "front.sock");
        await using var notify = NotifySocket.Open();
        // Started as an operator starts it, from the installed path: the path USR2 starts again.
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, app.AppPath,
            ["--workers", "2", "--pid", pidfile, "--socket-dir", socketDirectory, "--bind", $"unix:{unixFront}", "--bind", "h2c:127.0.0.1:0", "--admin-bind", "127.0.0.1:0", .. path.Arguments()],
            new Dictionary<string, string> { ["NOTIFY_SOCKET"] = notify.Path },
            launcher: ["sh", "-c", $"shift; exec '{installed}' \"$@\"", "sh"]);
        var old = supervisor.Pid;
        var admin = await supervisor.AdminAddressAsync(Timeout);
        Assert.Equal("READY=1", NotifySocket.StateOf(await notify.NextStateAsync(Timeout)));
        int? next = null;
        try
        {
            await using var load = MixedLoad.Start(supervisor.BaseAddress);
            await load.WaitForEveryKindAsync(1, Timeout);

            // A broken build on disk: it fails at start, and the running supervisor never stopped serving.
            // (Before it reads an option: the same in every mode, so shown once, for the suite's time.)
            int lines;
            if (path == ForwardingPath.Default)
            {
                File.Move(installed, installed + ".good");
                await File.WriteAllTextAsync(installed, "#!/bin/sh\necho 'supervisor: error: this build is broken' >&2\nexit 1\n");
                File.SetUnixFileMode(installed, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                lines = supervisor.LineCount;
                supervisor.Signal(Posix.SIGUSR2);
                await supervisor.WaitForLogAsync($@"\[{old}\] \[ERROR\] Upgrade failed: the new supervisor \(pid \d+\) exited with code 1 before it served", Timeout, lines);
                Assert.Contains("this build is broken", supervisor.Log);
                await load.WaitForEveryKindAsync(1, Timeout);
                Assert.Equal($"{old}", (await File.ReadAllTextAsync(pidfile)).Trim());
                File.Move(installed + ".good", installed, overwrite: true);
            }

            // The real build, but the app on disk now fails at start: the new supervisor's workers cannot
            // boot, it exits 3, and leaves what is the old one's: the unix: file, the pid file, the sockets.
            app.SetSetting("TESTAPP_FAIL_AT_START", "startup failed: the new release needs a migration");
            lines = supervisor.LineCount;
            supervisor.Signal(Posix.SIGUSR2);
            await supervisor.WaitForLogAsync($@"\[{old}\] \[ERROR\] Upgrade failed: the new supervisor \(pid \d+\) exited with code 3 before it served", Timeout, lines);
            Assert.Contains("the new release needs a migration", supervisor.Log);
            app.SetSetting("TESTAPP_FAIL_AT_START", null);
            await load.WaitForEveryKindAsync(1, Timeout);
            Assert.Equal($"{old}", (await File.ReadAllTextAsync(pidfile)).Trim());
            using (var overUnix = LoopbackClient.OverUnixSocket(unixFront))
            {
                Assert.Equal("ok", await overUnix.GetStringAsync("/"));
            }
            Assert.Empty(Directory.EnumerateDirectories(socketDirectory)); // its own directory inside the old one's, removed

            // The good build and app: it boots beside the running supervisor, serves, and the old one drains and exits.
            lines = supervisor.LineCount;
            supervisor.Signal(Posix.SIGUSR2);
            next = int.Parse((await supervisor.WaitForLogAsync(@"Upgrading: started \S+ as supervisor (\d+)", Timeout, lines)).Groups[1].Value);
            await supervisor.WaitForLogAsync($@"\[{next}\] \[INFO\] Upgrade complete: serving; supervisor {old} drains and exits", Timeout, lines);
            await Eventually.TrueAsync(() => !Posix.IsAlive(old), Timeout, "the old supervisor has drained and exited");
            await load.WaitForEveryKindAsync(1, Timeout);
            await load.StopAsync();

            // Not one unit of the mix failed: those the old supervisor held finished as it drained. And none
            // was sent twice: each lane moved to the new supervisor after an answer that said Connection:
            // close, never because a keep-alive connection closed under it (which a client sees as a failed
            // request, or resends unseen if it can: the counted connections tell).
            output.WriteLine($"load: {load.Summary()}");
            load.AssertAllIntact();
            // The old supervisor's workers left with it; the new supervisor's serve every address, h2c: still HTTP/2 alone.
            Assert.Matches($@"\[{next}\] \[INFO\] Listening at: http://127\.0\.0\.1:\d+ \(fd \d+\) \({(path.WorkersServeClients() ? "h2c" : "HTTP/2 with prior knowledge only")}\)", supervisor.Log);
            Assert.Matches($@"\[{old}\] \[INFO\] Worker exiting \(pid: \d+\): worker 0, generation 1, supervisor stopping", supervisor.Log);
            using (var overUnix = LoopbackClient.OverUnixSocket(unixFront))
            {
                Assert.Equal("ok", await overUnix.GetStringAsync("/"));
            }
            using (var probe = new HttpClient { BaseAddress = admin, Timeout = Timeout })
            {
                Assert.Equal(HttpStatusCode.OK, (await probe.GetAsync("/readyz")).StatusCode);
            }
            Assert.Equal($"{next}", (await File.ReadAllTextAsync(pidfile)).Trim());
            var status = await SupervisorCli.RunAsync(output, "status", "--socket-dir", socketDirectory);
            Assert.StartsWith($"supervisor {next} (", status.StandardOutput);

            // systemd was told the new main pid by the old one, then READY=1 by the new one; nothing by the broken build.
            Assert.Equal($"MAINPID={next}", NotifySocket.StateOf(await notify.NextStateAsync(Timeout)));
            Assert.Equal("READY=1", NotifySocket.StateOf(await notify.NextStateAsync(Timeout)));
        }
        finally
        {
            if (next is { } pid && Posix.IsAlive(pid))
            {
                Posix.Kill(pid, Posix.SIGTERM);
                await Eventually.TrueAsync(() => !Posix.IsAlive(pid), Timeout, "the new supervisor has stopped");
            }
        }
        await supervisor.WaitForLogAsync($@"\[{next}\] \[INFO\] Shutting down: Master", Timeout);
        Assert.Equal("STOPPING=1", NotifySocket.StateOf(await notify.NextStateAsync(Timeout)));
        Assert.False(File.Exists(unixFront), "the unix: socket file outlived the supervisor that served it last");
        Assert.False(File.Exists(pidfile), "the pid file outlived the supervisor it names");
    }

    /// <summary>
    /// The README's first command runs the supervisor from <c>dotnet build</c>'s output: an apphost,
    /// for which argv[0] names the assembly beside it. USR2 must start that apphost again (it started the
    /// assembly itself, which failed with "Permission denied" and left the old supervisor serving).
    /// </summary>
    [Fact]
    public async Task Usr2_starts_the_apphost_again_when_the_supervisor_runs_from_dotnet_builds_output()
    {
        var artifacts = await Artifacts.GetAsync();
        var apphost = InstallBuildOutput();
        var pidfile = Path.Combine(_scratch, "supervisor.pid");
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, ["--workers", "1", "--pid", pidfile],
            environment: null, launcher: ["sh", "-c", $"shift; exec '{apphost}' \"$@\"", "sh"]);
        var old = supervisor.Pid;
        int? next = null;
        try
        {
            var lines = supervisor.LineCount;
            supervisor.Signal(Posix.SIGUSR2);
            var outcome = await supervisor.WaitForLogAsync(@"Upgrade (complete|failed)[^\n]*", Timeout, lines);
            Assert.True(outcome.Groups[1].Value == "complete", $"the upgrade did not complete: {outcome.Value}");
            var started = await supervisor.WaitForLogAsync(@"Upgrading: started (\S+) as supervisor (\d+)", Timeout, lines);
            Assert.Equal(apphost, started.Groups[1].Value);
            next = int.Parse(started.Groups[2].Value);
            await Eventually.TrueAsync(() => !Posix.IsAlive(old), Timeout, "the old supervisor has drained and exited");
            Assert.Equal($"{next}", (await File.ReadAllTextAsync(pidfile)).Trim());
            using var client = new HttpClient { BaseAddress = supervisor.BaseAddress, Timeout = Timeout };
            Assert.Equal("ok", await client.GetStringAsync("/"));
        }
        finally
        {
            if (next is { } pid && Posix.IsAlive(pid))
            {
                Posix.Kill(pid, Posix.SIGTERM);
                await Eventually.TrueAsync(() => !Posix.IsAlive(pid), Timeout, "the new supervisor has stopped");
            }
        }
    }

    // The supervisor as `dotnet build` leaves it (apphost, assembly, runtimeconfig), built with the tests,
    // in their configuration.
    private string InstallBuildOutput()
    {
        var testOutput = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)); // .../bin/CONFIGURATION/TFM
        var built = Path.Combine(Artifacts.RepositoryRoot, "supervisor", "bin", testOutput.Parent!.Name, testOutput.Name, "supervisor");
        Assert.True(File.Exists(built) && File.Exists(built + ".dll"), $"no apphost and assembly at {built}: build the solution first");
        return Install(built);
    }

    // A supervisor (published, or as built) with the files beside it, copied where a new build can be put in its place.
    private string Install(string supervisor)
    {
        var directory = Directory.CreateDirectory(Path.Combine(_scratch, "install")).FullName;
        foreach (var file in Directory.EnumerateFiles(Path.GetDirectoryName(supervisor)!).Where(file => !file.EndsWith(".dbg", StringComparison.Ordinal)))
        {
            File.Copy(file, Path.Combine(directory, Path.GetFileName(file)));
        }
        return Path.Combine(directory, Path.GetFileName(supervisor));
    }
}
