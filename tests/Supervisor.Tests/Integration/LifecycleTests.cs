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
    public async Task A_worker_killed_from_outside_is_replaced_and_costs_only_what_it_was_answering(ForwardingPath path)
    {
        var artifacts = await Artifacts.GetAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, ["--workers", "2", .. path.Arguments()]);
        var victim = supervisor.BootedWorkerPids[0];
        var linesBefore = supervisor.LineCount;
        // Traffic throughout: before the kill, while only one worker is left, and after the replacement.
        await using var load = MixedLoad.Start(supervisor.BaseAddress);
        await load.WaitForEveryKindAsync(1, TimeSpan.FromSeconds(60));

        Posix.Kill(victim, Posix.SIGKILL);
        await supervisor.WaitForLogAsync($@"Worker \(pid:{victim}\) was killed by signal 9", TimeSpan.FromSeconds(10), linesBefore);
        var deathKnownAt = Stopwatch.GetTimestamp();
        var replacement = int.Parse((await supervisor.WaitForLogAsync(@"Booting worker with pid: (\d+) \(worker 0", TimeSpan.FromSeconds(10), linesBefore)).Groups[1].Value);
        await supervisor.WaitForLogAsync($@"Worker 0 ready \(pid: {replacement}", SupervisorProcess.StartTimeout, linesBefore);
        await load.WaitForEveryKindAsync(2, TimeSpan.FromSeconds(60));
        await load.StopAsync();

        output.WriteLine($"load: {load.Summary()}");
        load.AssertIntactExcept(MixedLoad.DoomedByDeathOf(victim, deathKnownAt));
        // Requests reached the replacement: the slot was filled, not just left to the other worker.
        Assert.Contains(load.Outcomes, outcome => outcome.WorkerPid == replacement && !outcome.Failed);
        Assert.DoesNotContain(load.Outcomes, outcome => outcome.WorkerPid == victim && outcome.StartedAt > deathKnownAt);
    }

    [Fact]
    public async Task Sigterm_lets_an_in_flight_request_finish_then_exits_0_leaving_no_process_behind()
    {
        var artifacts = await Artifacts.GetAsync();
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--workers", "2");
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
