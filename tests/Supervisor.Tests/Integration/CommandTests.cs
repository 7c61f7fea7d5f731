using System.Text.Json;
using System.Text.RegularExpressions;
using Supervisor.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Supervisor.Tests.Integration;

/// <summary>
/// <c>supervisor status</c> and <c>supervisor reload --wait</c>, run as an operator (or systemd's
/// ExecReload) runs them, against a live supervisor found through its --pid file.
/// </summary>
public sealed class CommandTests(ITestOutputHelper output)
{
    private static readonly TimeSpan ReloadTimeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Status_shows_each_worker_and_reload_wait_exits_with_each_reloads_result()
    {
        using var app = await AppFolder.CopyOfTestAppAsync();
        var config = Path.Combine(app.Directory, "supervisor.json");
        WriteAtomically(config, """{ "workers": 2 }""");
        var pidfile = Path.Combine(app.Directory, "supervisor.pid");
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, app.AppPath, "--config", config, "--pid", pidfile);
        using var client = supervisor.CreateClient();
        for (var i = 0; i < 30; i++)
        {
            await client.GetStringAsync("/");
        }

        // status --json: every worker, what it was given, its memory.
        var json = await SupervisorCli.RunAsync(output, "status", "--pid", pidfile, "--json");
        Assert.Equal(0, json.ExitCode);
        using (var document = JsonDocument.Parse(json.StandardOutput))
        {
            var root = document.RootElement;
            Assert.Equal(supervisor.Pid, root.GetProperty("pid").GetInt32());
            Assert.Equal(1, root.GetProperty("serving_generation").GetInt32());
            var pool = root.GetProperty("pool").EnumerateArray().ToList();
            Assert.Equal(supervisor.BootedWorkerPids.Order(), pool.Select(w => w.GetProperty("pid").GetInt32()).Order());
            Assert.Equal([0, 1], pool.Select(w => w.GetProperty("slot").GetInt32()).Order());
            Assert.All(pool, w => Assert.Equal("serving", w.GetProperty("state").GetString()));
            Assert.Equal(30, pool.Sum(w => w.GetProperty("requests").GetInt64()));
            Assert.All(pool, w => Assert.InRange(w.GetProperty("resident_bytes").GetInt64(), 10L << 20, 4L << 30));
        }
        // status: the same, as a table.
        var table = await SupervisorCli.RunAsync(output, "status", "--pid", pidfile);
        Assert.Equal(0, table.ExitCode);
        Assert.StartsWith($"supervisor {supervisor.Pid} (", table.StandardOutput);
        Assert.Contains("2/2 workers serving, generation 1; reload: none", table.StandardOutput);
        Assert.All(supervisor.BootedWorkerPids, pid => Assert.Matches($@"(?m)^[01]\s+{pid}\s+1\s+serving\s+\S+\s+\d+\s+0\s+[\d.]+ MiB$", table.StandardOutput));

        // A reload that completes: exit 0 once the new generation serves, naming it as the log does.
        var linesBefore = supervisor.LineCount;
        var completed = await SupervisorCli.RunAsync(output, "reload", "--wait", "--pid", pidfile);
        Assert.Equal(0, completed.ExitCode);
        var replied = Regex.Match(completed.StandardOutput, @"^supervisor: reload completed: generation 2 serving \(pids (\d+, \d+)\)");
        Assert.True(replied.Success, completed.StandardOutput);
        var logged = await supervisor.WaitForLogAsync(@"Reload complete: generation 2 serving \(pids (\d+, \d+)\)", ReloadTimeout, linesBefore);
        Assert.Equal(logged.Groups[1].Value, replied.Groups[1].Value);
        Assert.Contains("Handling command: reload (supervisor reload --wait)", supervisor.Log);

        // New workers that fail at start: exit 3 with their output, and generation 2 serves on.
        app.SetSetting("TESTAPP_FAIL_AT_START", "startup failed: the orders database is unreachable");
        var abandoned = await SupervisorCli.RunAsync(output, "reload", "--wait", "--pid", pidfile);
        Assert.Equal(3, abandoned.ExitCode);
        Assert.StartsWith("supervisor: reload abandoned: generation 3 abandoned, generation 2 keeps serving", abandoned.StandardError);
        Assert.Contains("the orders database is unreachable", abandoned.StandardError);
        app.SetSetting("TESTAPP_FAIL_AT_START", null);

        // A configuration the supervisor refuses: exit 2 with the file, key and reason; nothing started.
        WriteAtomically(config, """{ "workers": 0 }""");
        linesBefore = supervisor.LineCount;
        var refused = await SupervisorCli.RunAsync(output, "reload", "--wait", "--pid", pidfile);
        Assert.Equal(2, refused.ExitCode);
        Assert.StartsWith($"supervisor: reload refused: {config}: \"workers\": must be a whole number, 1 or more", refused.StandardError);
        Assert.Empty(supervisor.BootedWorkerPidsSince(linesBefore));
        WriteAtomically(config, """{ "workers": 2 }""");

        // The supervisor stops while a reload is waited for: the waiter is told, exit 1.
        app.SetSetting("TESTAPP_START_DELAY_MS", "600000");
        linesBefore = supervisor.LineCount;
        var waiting = SupervisorCli.RunAsync(output, "reload", "--wait", "--pid", pidfile);
        await supervisor.WaitForLogAsync("Reloading: booting generation 4", ReloadTimeout, linesBefore);
        Assert.False(waiting.IsCompleted, "reload --wait returned while its reload was booting");
        supervisor.Signal(Posix.SIGTERM);
        var stopped = await waiting;
        Assert.Equal(1, stopped.ExitCode);
        Assert.StartsWith("supervisor: reload stopping: the supervisor is stopping", stopped.StandardError);
        Assert.Equal(0, await supervisor.WaitForExitAsync(ReloadTimeout));
    }

    [Fact]
    public async Task Status_without_a_running_supervisor_says_what_to_give_it()
    {
        var scratch = Directory.CreateTempSubdirectory("supervisor-commands-");
        try
        {
            SupervisorCli.AssertRefused(await SupervisorCli.RunAsync(output, "status", "--socket-dir", scratch.FullName), 1,
                $"no command socket in --socket-dir '{scratch.FullName}': give the --socket-dir the supervisor runs with");

            var notAPid = Path.Combine(scratch.FullName, "not-a-pid");
            await File.WriteAllTextAsync(notAPid, "myapi\n");
            SupervisorCli.AssertRefused(await SupervisorCli.RunAsync(output, "reload", "--pid", notAPid), 1,
                $"--pid '{notAPid}' holds 'myapi', not a process id");

            // A pid file left behind by a supervisor that is gone.
            var stale = Path.Combine(scratch.FullName, "stale.pid");
            await File.WriteAllTextAsync(stale, "2147483646\n");
            SupervisorCli.AssertRefused(await SupervisorCli.RunAsync(output, "status", "--pid", stale), 1,
                "no command socket for supervisor pid 2147483646");

            SupervisorCli.AssertRefused(await SupervisorCli.RunAsync(output, "reload", "--wait-timeout", "0"), 2,
                "--wait-timeout 0: give a number of seconds above 0");
        }
        finally
        {
            scratch.Delete(recursive: true);
        }
    }

    private static void WriteAtomically(string path, string content)
    {
        File.WriteAllText(path + ".new", content);
        File.Move(path + ".new", path, overwrite: true);
    }
}
