using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Supervisor.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Supervisor.Tests.Integration;

/// <summary>Workers that crash, a supervisor that is stopped or killed: the pool's life and death.</summary>
public sealed class LifecycleTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(ForwardingPath.Default)]
    [InlineData(ForwardingPath.Http1Workers)]
    [InlineData(ForwardingPath.Kernel)]
    [InlineData(ForwardingPath.Handoff)]
    public async Task A_worker_killed_from_outside_is_replaced_and_costs_only_what_it_was_answering(ForwardingPath path)
    {
        var artifacts = await Artifacts.GetAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, ["--workers", "2", .. path.Arguments()]);
        var victim = supervisor.BootedWorkerPids[0];
        var linesBefore = supervisor.LineCount;
        // Traffic throughout: before the kill, while only one worker is left, and after the replacement.
        await using var load = MixedLoad.Start(supervisor.BaseAddress);
        await load.WaitForEveryKindAsync(1, TimeSpan.FromSeconds(60));

        var killedAt = Stopwatch.GetTimestamp();
        Posix.Kill(victim, Posix.SIGKILL);
        await supervisor.WaitForLogAsync($@"Worker \(pid:{victim}\) was killed by signal 9", TimeSpan.FromSeconds(10), linesBefore);
        var deathKnownAt = Stopwatch.GetTimestamp();
        var replacement = int.Parse((await supervisor.WaitForLogAsync(@"Booting worker with pid: (\d+) \(worker 0", TimeSpan.FromSeconds(10), linesBefore)).Groups[1].Value);
        await supervisor.WaitForLogAsync($@"Worker 0 ready \(pid: {replacement}", SupervisorProcess.StartTimeout, linesBefore);
        await load.WaitForEveryKindAsync(2, TimeSpan.FromSeconds(60));
        await load.StopAsync();

        output.WriteLine($"load: {load.Summary()}; the death was known {Stopwatch.GetElapsedTime(killedAt, deathKnownAt).TotalMilliseconds:F0} ms after the kill");
        foreach (var failure in load.Failures)
        {
            output.WriteLine($"failed: {failure}, from {Stopwatch.GetElapsedTime(killedAt, failure.StartedAt).TotalMilliseconds:F0} to {Stopwatch.GetElapsedTime(killedAt, failure.EndedAt).TotalMilliseconds:F0} ms after the kill");
        }
        if (path.WorkersServeClients())
        {
            // Its clients' connections die with it, in flight or idle: a client may send an idle one's next request again.
            load.AssertIntactExcept(MixedLoad.DoomedByDeathOfKernelWorker(victim, deathKnownAt), resendsAllowed: load.HttpLanes);
        }
        else
        {
            load.AssertIntactExcept(MixedLoad.DoomedByDeathOf(victim, deathKnownAt));
        }
        // Requests reached the replacement: the slot was filled, not just left to the other worker. In kernel
        // and handoff modes the load's clients keep the connections the survivor took while the slot was
        // empty: the replacement shows on new connections.
        if (path.WorkersServeClients())
        {
            var servedBy = new List<int>();
            for (var i = 0; i < 50 && !servedBy.Contains(replacement); i++)
            {
                using var freshConnection = supervisor.CreateClient();
                servedBy.Add((await WhoAmI.GetAsync(freshConnection)).Pid);
            }
            Assert.True(servedBy.Contains(replacement), $"{servedBy.Count} new connections, none served by the replacement {replacement}: {string.Join(", ", servedBy.Distinct())}");
        }
        else
        {
            Assert.Contains(load.Outcomes, outcome => outcome.WorkerPid == replacement && !outcome.Failed);
        }
        Assert.DoesNotContain(load.Outcomes, outcome => outcome.WorkerPid == victim && outcome.StartedAt > deathKnownAt);
    }

    [Theory]
    [InlineData(ForwardingPath.Default)]
    [InlineData(ForwardingPath.Kernel)] // Each worker's inherited copy closes at its SIGTERM, the supervisor's at once.
    [InlineData(ForwardingPath.Handoff)]
    public async Task Sigterm_lets_an_in_flight_request_finish_then_exits_0_leaving_no_process_behind(ForwardingPath path)
    {
        var artifacts = await Artifacts.GetAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, ["--workers", "2", .. path.Arguments()]);
        using var client = supervisor.CreateClient();
        var workers = supervisor.BootedWorkerPids;

        var inFlight = client.GetAsync("/slow?ms=3000");
        await supervisor.WaitForLogAsync("slow request started", TimeSpan.FromSeconds(10));
        supervisor.Signal(Posix.SIGTERM);
        await supervisor.WaitForLogAsync("Handling signal: term", TimeSpan.FromSeconds(5));

        // The listener closes at once, while the request in flight is still being served.
        await Eventually.TrueAsync(() => !AcceptsConnections(supervisor.BaseAddress), TimeSpan.FromSeconds(2), "the public listener is closed");
        Assert.False(inFlight.IsCompleted, "the slow request should still be running when the listener closes");

        using var response = await inFlight;
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Matches("^slept 3000 ms", await response.Content.ReadAsStringAsync());
        Assert.Equal(0, await supervisor.WaitForExitAsync(TimeSpan.FromSeconds(10)));
        Assert.All(workers, pid => Assert.False(Posix.IsAlive(pid), $"worker {pid} outlived the supervisor"));
        Assert.Contains("Shutting down: Master", supervisor.Log);
    }

    [Fact]
    public async Task Sigterm_past_the_graceful_timeout_cuts_the_request_stops_the_worker_and_exits_0()
    {
        await using var supervisor = await StartOneWorkerAsync("--graceful-timeout", "1");
        using var client = supervisor.CreateClient();
        var worker = supervisor.BootedWorkerPids.Single();
        var inFlight = await StartRequestOfAMinuteAsync(supervisor, client);

        var signalled = Stopwatch.GetTimestamp();
        supervisor.Signal(Posix.SIGTERM);
        Assert.Equal(0, await supervisor.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        var took = Stopwatch.GetElapsedTime(signalled);

        output.WriteLine($"SIGTERM to exit: {took.TotalMilliseconds:F0} ms");
        await Assert.ThrowsAsync<HttpRequestException>(() => inFlight.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.False(Posix.IsAlive(worker), "the worker outlived the supervisor");
        // The request had its --graceful-timeout; the 60 s it wanted are not waited for.
        Assert.True(took >= TimeSpan.FromSeconds(1), $"stopped {took.TotalMilliseconds:F0} ms after SIGTERM, before --graceful-timeout 1");
        Assert.True(took < TimeSpan.FromSeconds(20), $"stopped {took.TotalSeconds:F1} s after SIGTERM: --graceful-timeout 1 was not kept");
    }

    [Fact]
    public async Task Sigint_during_a_graceful_stop_cuts_it_short()
    {
        await using var supervisor = await StartOneWorkerAsync();
        using var client = supervisor.CreateClient();
        var inFlight = await StartRequestOfAMinuteAsync(supervisor, client);
        supervisor.Signal(Posix.SIGTERM);
        await supervisor.WaitForLogAsync("Handling signal: term", TimeSpan.FromSeconds(10));

        // The graceful stop would wait up to 30 s for the request; INT ends it now.
        var interrupted = Stopwatch.GetTimestamp();
        supervisor.Signal(Posix.SIGINT);
        Assert.Equal(0, await supervisor.WaitForExitAsync(TimeSpan.FromSeconds(20)));
        var took = Stopwatch.GetElapsedTime(interrupted);

        output.WriteLine($"SIGINT to exit during the graceful stop: {took.TotalMilliseconds:F0} ms");
        Assert.Contains("Handling signal: int: cutting the graceful stop short", supervisor.Log);
        await Assert.ThrowsAsync<HttpRequestException>(() => inFlight.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.True(took < TimeSpan.FromSeconds(10), $"exited {took.TotalSeconds:F1} s after SIGINT: the graceful stop was not cut short");
    }

    [Fact]
    public async Task Signals_its_parent_left_ignored_still_reload_and_stop_it()
    {
        var artifacts = await Artifacts.GetAsync();
        // nohup leaves HUP ignored, and a script's background job (`&`) INT and QUIT; .NET alone would keep them so.
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, ["--workers", "1"],
            environment: null, launcher: ["env", "--ignore-signal=HUP,INT,QUIT"]);

        supervisor.Signal(Posix.SIGHUP);
        await supervisor.WaitForLogAsync("Reload complete: generation 2 serving", TimeSpan.FromSeconds(60));
        supervisor.Signal(Posix.SIGINT);
        Assert.Equal(0, await supervisor.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("Handling signal: int", supervisor.Log);
        Assert.Contains("Handling signals its parent left ignored (nohup, a background job): hup, int, quit", supervisor.Log);
    }

    [Fact]
    public async Task Gunicorns_signals_it_does_not_use_are_logged_and_ignored_and_the_workers_serve_on()
    {
        var artifacts = await Artifacts.GetAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "1");
        var worker = supervisor.BootedWorkerPids.Single();

        // WINCH stops Gunicorn's workers when it runs daemonized, which the supervisor never does.
        supervisor.Signal(Posix.SIGWINCH);
        await supervisor.WaitForLogAsync(@"\[WARNING\] Ignoring signal: winch: ", TimeSpan.FromSeconds(30));

        using var client = supervisor.CreateClient();
        Assert.Equal("ok", await client.GetStringAsync("/"));
        Assert.Equal([worker], supervisor.BootedWorkerPids);
        Assert.True(Posix.IsAlive(worker), "the worker did not survive the signals");
        supervisor.Signal(Posix.SIGTERM);
        Assert.Equal(0, await supervisor.WaitForExitAsync(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task As_a_containers_entrypoint_it_serves_from_a_read_only_app_without_a_home_binds_from_the_image_and_reaps_orphans_as_pid_1()
    {
        // What deploy/docker/Dockerfile's entrypoint relies on, without a container runtime: PID 1 of a pid
        // namespace (unshare, as root in CI), the app folder mounted read-only, no home, the port and the
        // worker count from the image's variables, the key ring on its volume, the access log on stdout.
        using var app = await AppFolder.CopyOfTestAppAsync();
        var keys = Directory.CreateTempSubdirectory("sup-keys-");
        var port = LoopbackClient.FreePort();
        var image = new Dictionary<string, string> { ["ASPNETCORE_HTTP_PORTS"] = $"{port}", ["WEB_CONCURRENCY"] = "2", ["HOME"] = "/nonexistent" };
        await using var container = await SupervisorProcess.StartAsync(output, app.AppPath,
            ["--admin-bind", "127.0.0.1:0", "--data-protection-dir", keys.FullName, "--access-logfile", "-"], image,
            launcher: ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", "sh", "-c",
                $"mount --bind '{app.Directory}' '{app.Directory}' && mount -o remount,bind,ro '{app.Directory}' && exec \"$0\" \"$@\""]);
        await container.WaitForLogAsync(@"All 2 workers ready", SupervisorProcess.StartTimeout);
        Assert.Matches(@"\[1\] \[INFO\] Starting supervisor", container.Log);
        Assert.Contains($"Listening at: http://0.0.0.0:{port} (1)", container.Log);
        using (var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(30) })
        {
            Assert.Equal("ok", await client.GetStringAsync("/"));
        }
        await container.WaitForLogAsync(@"""GET / HTTP/1\.1"" 200", TimeSpan.FromSeconds(30)); // the access log on stdout
        Assert.Contains("using the supervisor's shared key ring in " + keys.FullName, container.Log);
        Assert.NotEmpty(keys.EnumerateFiles("key-*.xml"));
        keys.Delete(recursive: true);
        Assert.DoesNotContain("[ERROR]", container.Log);
        var supervisor = ProcessTree.ChildrenOf(container.Pid).Single().Pid;

        // A process whose parent exits is adopted by PID 1 of its namespace, as an app's own daemon would be;
        // it lets go of nsenter's output, as a daemon does, so that nsenter returns while it runs.
        const int orphans = 5;
        for (var i = 0; i < orphans; i++)
        {
            var placed = await ExternalTool.RunAsync(output, "nsenter", ["--target", $"{supervisor}", "--pid", "--mount", "sh", "-c", "sleep 5 </dev/null >/dev/null 2>&1 & exit 0"]);
            Assert.Equal(0, placed.ExitCode);
        }
        var children = ProcessTree.ChildrenOf(supervisor).Select(child => (child.Pid, Name: Comm(child.Pid))).ToList();
        var adopted = children.Where(child => child.Name == "sleep").Select(child => child.Pid).ToList();
        Assert.True(adopted.Count == orphans, $"adopted {adopted.Count} of {orphans}; children: {string.Join(", ", children)}");
        // Reaped when they exit: no zombie is left to fill the process table.
        await Eventually.TrueAsync(() => adopted.All(pid => !File.Exists($"/proc/{pid}/stat")), TimeSpan.FromSeconds(30), "the adopted orphans reaped");
        Assert.Equal(0, ProcessTree.ZombieChildren(supervisor));

        // A binary upgrade would end with this process's exit, and the container with it.
        Posix.Kill(supervisor, Posix.SIGUSR2);
        await container.WaitForLogAsync(@"\[WARNING\] Ignoring signal: usr2: the supervisor is PID 1 \(a container's entrypoint\)", TimeSpan.FromSeconds(30));

        Posix.Kill(supervisor, Posix.SIGTERM);
        Assert.Equal(0, await container.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("Shutting down: Master", container.Log);
        Assert.DoesNotContain("Upgrading", container.Log);
    }

    [Fact]
    public async Task The_pid_file_holds_the_supervisors_pid_refuses_a_second_start_and_is_removed_at_stop()
    {
        var artifacts = await Artifacts.GetAsync();
        var folder = Directory.CreateTempSubdirectory("sup-pid-").FullName;
        try
        {
            var pidFile = Path.Combine(folder, "supervisor.pid");
            // A file left by a supervisor that was killed names a pid that no longer runs: it is taken over.
            using (var gone = Process.Start("true"))
            {
                await gone.WaitForExitAsync();
                await File.WriteAllTextAsync(pidFile, $"{gone.Id}\n");
            }
            await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "1", "--pid", pidFile);
            Assert.Equal($"{supervisor.Pid}\n", await File.ReadAllTextAsync(pidFile));

            var second = await SupervisorCli.RunAsync(output, "--app", artifacts.TestApp, "--bind", "127.0.0.1:0", "--pid", pidFile);
            SupervisorCli.AssertRefused(second, 2, $"--pidfile '{pidFile}' names pid {supervisor.Pid}, which is running");
            Assert.Equal($"{supervisor.Pid}\n", await File.ReadAllTextAsync(pidFile));

            supervisor.Signal(Posix.SIGTERM);
            Assert.Equal(0, await supervisor.WaitForExitAsync(TimeSpan.FromSeconds(30)));
            Assert.False(File.Exists(pidFile), "the pid file outlived the supervisor");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task A_worker_that_keeps_dying_is_restarted_after_a_growing_pause_while_the_others_serve()
    {
        var artifacts = await Artifacts.GetAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "2");
        await using var load = LoadGenerator.Start(supervisor.BaseAddress, "/", connections: 4);
        var victim = supervisor.BootedWorkerPids[0];
        var pauses = new List<double>();

        // Slot 0's worker dies three times in a row, each soon after it was ready: restarted at once, then after 1 s, then 2 s.
        for (var death = 1; death <= 3; death++)
        {
            var linesBefore = supervisor.LineCount;
            var killedAt = ProcessTree.SecondsSinceBoot();
            Posix.Kill(victim, Posix.SIGKILL);
            var booting = await supervisor.WaitForLogAsync(@"Booting worker with pid: (\d+) \(worker 0", TimeSpan.FromSeconds(30), linesBefore);
            victim = int.Parse(booting.Groups[1].Value);
            // From the kill to the replacement's start, both on the kernel's clock: no log latency in between.
            pauses.Add(ProcessTree.StartedAfterBoot(victim) - killedAt);
            await supervisor.WaitForLogAsync($@"Worker 0 ready \(pid: {victim}", SupervisorProcess.StartTimeout, linesBefore);
        }
        await load.WaitForMoreSuccessesAsync(100, TimeSpan.FromSeconds(30));
        await load.StopAsync();

        output.WriteLine($"from each kill to the next start: {string.Join(", ", pauses.Select(p => $"{p:F2} s"))}; load: {load.Summary()}");
        Assert.Contains("Worker 0 failed 2 times in a row; next start in 1 s", supervisor.Log);
        Assert.Contains("Worker 0 failed 3 times in a row; next start in 2 s", supervisor.Log);
        // 10 ms for the clock's resolution.
        Assert.True(pauses[1] >= 0.99 && pauses[2] >= 1.99, "the restarts did not wait their back-off");
        Assert.Equal(0, load.Failed);
    }

    [Theory]
    [InlineData(Posix.SIGINT)]
    [InlineData(Posix.SIGQUIT)]
    public async Task Sigint_and_sigquit_stop_quickly_and_exit_0(int signal)
    {
        var artifacts = await Artifacts.GetAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "2");
        var workers = supervisor.BootedWorkerPids;

        supervisor.Signal(signal);

        Assert.Equal(0, await supervisor.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.All(workers, pid => Assert.False(Posix.IsAlive(pid), $"worker {pid} outlived the supervisor"));
        // Workers that stop within their 1 s are not killed, and the stop is not reported as a fault.
        Assert.DoesNotContain("SIGKILL", supervisor.Log);
        Assert.DoesNotContain("[WARNING]", supervisor.Log);
    }

    [Fact]
    public async Task A_request_waiting_for_workers_that_never_become_ready_gets_503_when_the_supervisor_gives_up()
    {
        var artifacts = await Artifacts.GetAsync();
        // Whichever ends first, the request's own wait (--boot-timeout from its arrival) or the supervisor's
        // (--boot-timeout from the worker's start, then exit 3), the client is answered, not cut off. The
        // second case alone is in WorkerDispatcherTests.
        await using var supervisor = await SupervisorProcess.StartAsync(output, artifacts.TestApp, ["--bind", "127.0.0.1:0", "--workers", "1", "--boot-timeout", "3"],
            new Dictionary<string, string> { ["TESTAPP_START_DELAY_MS"] = "600000" });
        var listening = await supervisor.WaitForLogAsync(@"Listening at: (https?://\S+)", TimeSpan.FromSeconds(60));
        using var client = new HttpClient { BaseAddress = new Uri(listening.Groups[1].Value), Timeout = TimeSpan.FromSeconds(60) };

        using var response = await client.GetAsync("/");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        output.WriteLine(await response.Content.ReadAsStringAsync());
        Assert.Equal(3, await supervisor.WaitForExitAsync(TimeSpan.FromSeconds(60)));
    }

    [Fact]
    public async Task Sigint_gives_a_worker_slow_to_stop_one_second_before_sigkill()
    {
        var artifacts = await Artifacts.GetAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, ["--workers", "1"],
            new Dictionary<string, string> { ["TESTAPP_STOP_DELAY_MS"] = "60000" });
        var worker = supervisor.BootedWorkerPids.Single();

        var signalled = Stopwatch.GetTimestamp();
        supervisor.Signal(Posix.SIGINT);
        Assert.Equal(0, await supervisor.WaitForExitAsync(TimeSpan.FromSeconds(30)));

        var took = Stopwatch.GetElapsedTime(signalled);
        output.WriteLine($"SIGINT to exit: {took.TotalMilliseconds:F0} ms");
        Assert.False(Posix.IsAlive(worker), "the worker outlived the supervisor");
        Assert.True(took >= TimeSpan.FromSeconds(1), $"the worker was killed {took.TotalMilliseconds:F0} ms after SIGINT, before its 1 s");
        var killed = Assert.Single(Regex.Matches(supervisor.Log, @"still running after ([\d.]+) s; sending SIGKILL"));
        Assert.InRange(double.Parse(killed.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), 1.0, 29.0);
    }

    [Fact]
    public async Task A_supervisor_killed_with_sigkill_leaves_no_worker_behind_and_a_restart_binds_cleanly()
    {
        var artifacts = await Artifacts.GetAsync();
        var socketDirectory = Path.Combine(Path.GetTempPath(), $"sup-test-{Guid.NewGuid():N}"[..24]);
        try
        {
            await using (var first = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "3", "--socket-dir", socketDirectory))
            {
                var workers = first.BootedWorkerPids;
                first.Signal(Posix.SIGKILL);

                var gone = await Eventually.TrueAsync(() => workers.All(pid => !Posix.IsAlive(pid)), TimeSpan.FromSeconds(2), "every worker exits within 2 s of the supervisor's death");
                output.WriteLine($"workers gone {gone.TotalMilliseconds:F0} ms after SIGKILL");
                Assert.NotEmpty(Directory.GetFiles(socketDirectory, "*.sock")); // What a killed supervisor leaves behind.
            }

            await using var second = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "3", "--socket-dir", socketDirectory);
            using var client = second.CreateClient();
            Assert.Equal("ok", await client.GetStringAsync("/"));
        }
        finally
        {
            if (Directory.Exists(socketDirectory))
            {
                Directory.Delete(socketDirectory, recursive: true);
            }
        }
    }

    [Fact]
    public async Task The_default_socket_directory_of_a_killed_supervisor_is_removed_by_the_next_start()
    {
        var artifacts = await Artifacts.GetAsync();
        var runtimeDirectory = Directory.CreateTempSubdirectory("sup-xdg-").FullName;
        var environment = new Dictionary<string, string> { ["XDG_RUNTIME_DIR"] = runtimeDirectory };
        // A directory named after a live process (this test's) must be left alone, whatever it holds.
        var live = Directory.CreateDirectory(Path.Combine(runtimeDirectory, $"supervisor-{Environment.ProcessId}-0123abcd"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        try
        {
            string killedDirectory;
            await using (var killed = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, ["--workers", "1"], environment))
            {
                killed.Signal(Posix.SIGKILL);
                await killed.WaitForExitAsync(TimeSpan.FromSeconds(5));
                killedDirectory = Assert.Single(Directory.GetDirectories(runtimeDirectory, $"supervisor-{killed.Pid}-*"));
                Assert.NotEmpty(Directory.GetFiles(killedDirectory, "*.sock")); // What SIGKILL leaves behind.
            }

            await using var next = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, ["--workers", "1"], environment);

            Assert.False(Directory.Exists(killedDirectory), $"{killedDirectory} is still there");
            Assert.True(Directory.Exists(live.FullName), "the directory of a live pid was removed");
            Assert.Contains($"Removed socket directories left behind by killed supervisors: 1 in {runtimeDirectory}", next.Log);
            Assert.Single(Directory.GetDirectories(runtimeDirectory, $"supervisor-{next.Pid}-*"));
        }
        finally
        {
            Directory.Delete(runtimeDirectory, recursive: true);
        }
    }

    private async Task<SupervisorProcess> StartOneWorkerAsync(params string[] arguments) =>
        await SupervisorProcess.StartReadyAsync(output, (await Artifacts.GetAsync()).TestApp, ["--workers", "1", .. arguments]);

    // A request the app takes a minute to answer, once the app has begun it: a stop must cut it, not wait it out.
    private static async Task<Task<HttpResponseMessage>> StartRequestOfAMinuteAsync(SupervisorProcess supervisor, HttpClient client)
    {
        var inFlight = client.GetAsync("/slow?ms=60000");
        await supervisor.WaitForLogAsync("slow request started", TimeSpan.FromSeconds(10));
        return inFlight;
    }

    private static string Comm(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/comm").Trim();
        }
        catch (IOException)
        {
            return "(gone)";
        }
    }

    private static bool AcceptsConnections(Uri address)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Connect(address.Host, address.Port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
