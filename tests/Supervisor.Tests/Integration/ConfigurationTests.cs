using System.Text.RegularExpressions;
using Supervisor.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Supervisor.Tests.Integration;

/// <summary>
/// The configuration as a user meets it: a config file, variables and flags together; --check-config and
/// --print-config; and a SIGHUP that reads the file again, or refuses a bad one and keeps what runs.
/// </summary>
public sealed class ConfigurationTests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan ReloadTimeout = TimeSpan.FromSeconds(60);

    private readonly string _scratch = Directory.CreateTempSubdirectory("sup-conf-").FullName;

    public void Dispose() => Directory.Delete(_scratch, recursive: true);

    [Fact]
    public async Task Check_config_accepts_a_good_file_and_starts_nothing()
    {
        var artifacts = await Artifacts.GetAsync();
        var file = WriteConfig($$"""{ "app": "{{artifacts.TestApp}}", "workers": 3, "max_requests": 100, "bind": ["127.0.0.1:0"] }""");

        var result = await SupervisorCli.RunAsync(output, "--config", file, "--check-config");

        Assert.Equal(0, result.ExitCode);
        Assert.Equal($"supervisor: the configuration is valid ({file})", result.StandardOutput.Trim());
        Assert.Empty(result.StandardError);
    }

    [Fact]
    public async Task The_example_config_shipped_in_deploy_is_valid()
    {
        var artifacts = await Artifacts.GetAsync();
        var example = Path.Combine(Artifacts.RepositoryRoot, "deploy", "config", "supervisor.json");

        // The example names an app under /srv and logs under /var/log/myapi, which the check opens (a
        // test must not make them), and port 8000, which the check binds; everything else is checked as written.
        var result = await SupervisorCli.RunAsync(output, "--config", example, "--app", artifacts.HelloApi, "--check-config",
            "--error-logfile", Path.Combine(_scratch, "error.log"), "--access-logfile", Path.Combine(_scratch, "access.log"), "--bind", "127.0.0.1:0");

        Assert.Equal(0, result.ExitCode);
        Assert.Empty(result.StandardError);
    }

    [Fact]
    public async Task The_systemd_units_shipped_in_deploy_verify_and_the_service_is_sandboxed()
    {
        var artifacts = await Artifacts.GetAsync();
        // systemd-analyze checks that the unit's commands exist: they are pointed at this build.
        var unit = (await File.ReadAllTextAsync(Path.Combine(Artifacts.RepositoryRoot, "deploy", "systemd", "supervisor.service")))
            .Replace("/opt/supervisor/supervisor", artifacts.Supervisor, StringComparison.Ordinal)
            .Replace("/srv/myapi", _scratch, StringComparison.Ordinal);
        var file = Path.Combine(_scratch, "myapi.service");
        await File.WriteAllTextAsync(file, unit);
        var socket = Path.Combine(_scratch, "myapi.socket");
        File.Copy(Path.Combine(Artifacts.RepositoryRoot, "deploy", "systemd", "supervisor.socket"), socket);

        var verify = await ExternalTool.RunAsync(output, "systemd-analyze", ["verify", file, socket]);
        Assert.True(verify.ExitCode == 0 && verify.StandardError.Trim().Length == 0, $"systemd-analyze verify: exit {verify.ExitCode}: {verify.StandardError}");
        // 9.2 UNSAFE with no sandboxing; 4.0 or below is what systemd calls OK.
        var security = await ExternalTool.RunAsync(output, "systemd-analyze", ["security", "--offline=true", file]);
        var exposure = Regex.Match(security.StandardOutput, @"Overall exposure level for myapi\.service: (\d+\.\d)");
        Assert.True(exposure.Success, $"no exposure level in: {security.StandardOutput}{security.StandardError}");
        Assert.True(double.Parse(exposure.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) <= 4.0, security.StandardOutput);

        // Its command lines are ones the supervisor takes (the commands and options exist).
        foreach (var line in new[] { "ExecStart", "ExecReload" })
        {
            var arguments = Regex.Match(unit, $@"(?m)^{line}=\S+ (.*)$").Groups[1].Value.Split(' ');
            var command = arguments.TakeWhile(argument => !argument.StartsWith('-')).ToArray();
            var help = await SupervisorCli.RunAsync(output, [.. command, "--help"]);
            Assert.Equal(0, help.ExitCode);
            Assert.All(arguments.Where(argument => argument.StartsWith("--", StringComparison.Ordinal)), flag => Assert.Contains(flag + " ", help.StandardOutput));
        }
    }

    [Theory]
    [InlineData("""{ "app": "APP", "max_requests": -5 }""", "\"max_requests\": must be a whole number, 0 or more")]
    [InlineData("""{ "app": "APP", "bind": "example.com:80" }""", "\"bind\": 'example.com:80' is not an address")]
    [InlineData("""{ "app": "/nowhere/Missing.dll" }""", "\"app\": '/nowhere/Missing.dll' does not exist")]
    [InlineData("""{ "app": "APP", "wrokers": 2 }""", "\"wrokers\" is not a setting (did you mean \"workers\"?)")]
    [InlineData("""{ "app": "APP", "workers": 2,, }""", "not valid JSON at line 1")]
    public async Task Check_config_refuses_a_bad_file_with_the_file_the_key_and_the_reason(string content, string expected)
    {
        var artifacts = await Artifacts.GetAsync();
        var file = WriteConfig(content.Replace("APP", artifacts.TestApp, StringComparison.Ordinal));

        var result = await SupervisorCli.RunAsync(output, "--config", file, "--check-config");

        var line = SupervisorCli.AssertRefused(result, 2, expected);
        Assert.Contains(file, line);
    }

    [Fact]
    public async Task Check_config_refuses_a_certificate_that_cannot_be_loaded()
    {
        var artifacts = await Artifacts.GetAsync();
        var notPem = WriteConfig("not a certificate");

        var result = await SupervisorCli.RunAsync(output, "--app", artifacts.TestApp, "--certfile", notPem, "--keyfile", notPem, "--check-config");

        SupervisorCli.AssertRefused(result, 2, "cannot be loaded");
    }

    [Fact]
    public async Task Check_config_binds_each_address_as_a_start_would_and_refuses_one_in_use()
    {
        var artifacts = await Artifacts.GetAsync();
        using var holder = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        holder.Start();
        var taken = ((System.Net.IPEndPoint)holder.LocalEndpoint).Port;

        var result = await SupervisorCli.RunAsync(output, "--app", artifacts.TestApp, "--bind", $"127.0.0.1:{taken}", "--check-config");

        // Exit 1, as the start's own failure to bind: a port held by a process still stopping frees itself.
        SupervisorCli.AssertRefused(result, 1, $"cannot listen on 127.0.0.1:{taken}: the address is already in use");

        holder.Stop();
        var freed = await SupervisorCli.RunAsync(output, "--app", artifacts.TestApp, "--bind", $"127.0.0.1:{taken}", "--check-config");
        Assert.Equal(0, freed.ExitCode);
    }

    [Fact]
    public async Task Check_config_opens_the_log_files_and_refuses_one_whose_folder_is_missing()
    {
        var artifacts = await Artifacts.GetAsync();
        var missingFolder = Path.Combine(_scratch, "no-such-folder");

        var result = await SupervisorCli.RunAsync(output, "--app", artifacts.TestApp, "--error-logfile", Path.Combine(missingFolder, "error.log"), "--check-config");
        SupervisorCli.AssertRefused(result, 2, $"--error-logfile '{missingFolder}/error.log' cannot be written (the folder '{missingFolder}' does not exist)");

        result = await SupervisorCli.RunAsync(output, "--app", artifacts.TestApp, "--access-logfile", Path.Combine(missingFolder, "access.log"), "--check-config");
        SupervisorCli.AssertRefused(result, 2, $"--access-logfile '{missingFolder}/access.log' cannot be written (the folder '{missingFolder}' does not exist)");

        // A file the check could open is not left behind, and one that was there is left as it was.
        var existing = Path.Combine(_scratch, "error.log");
        await File.WriteAllTextAsync(existing, "yesterday\n");
        result = await SupervisorCli.RunAsync(output, "--app", artifacts.TestApp, "--error-logfile", existing, "--access-logfile", Path.Combine(_scratch, "access.log"), "--check-config");
        Assert.Equal(0, result.ExitCode);
        Assert.Equal("yesterday\n", await File.ReadAllTextAsync(existing));
        Assert.False(File.Exists(Path.Combine(_scratch, "access.log")));
    }

    [Fact]
    public async Task Check_config_checks_the_key_directory_and_warns_when_keys_cannot_persist()
    {
        var artifacts = await Artifacts.GetAsync();
        var readable = Directory.CreateDirectory(Path.Combine(_scratch, "keys")).FullName;
        File.SetUnixFileMode(readable, (UnixFileMode)0b111_101_101);

        var result = await SupervisorCli.RunAsync(output, "--app", artifacts.TestApp, "--data-protection-dir", readable, "--check-config");
        SupervisorCli.AssertRefused(result, 2, $"--data-protection-dir '{readable}' can be read by others (mode 755)");

        // A relative HOME would put the keys wherever the supervisor was started: valid, with the start's warning.
        var relativeHome = new Dictionary<string, string?> { ["HOME"] = ".", ["XDG_STATE_HOME"] = null };
        result = await SupervisorCli.RunAsync(output, relativeHome, "--app", artifacts.TestApp, "--check-config");
        Assert.Equal(0, result.ExitCode);
        Assert.Equal("supervisor: warning: DataProtection keys will not persist across restarts, so logins and antiforgery tokens will not either: there is no absolute home directory to keep them in (HOME is '.'); set --data-protection-dir", result.StandardError.Trim());
    }

    [Fact]
    public async Task Print_config_shows_every_value_and_where_it_came_from()
    {
        var artifacts = await Artifacts.GetAsync();
        var file = WriteConfig("""{ "workers": 3, "keepalive": 5 }""");
        var environment = new Dictionary<string, string?>
        {
            ["SUPERVISOR_TIMEOUT"] = "12",
            ["SUPERVISOR_CMD_ARGS"] = "--workers 4",
            ["WEB_CONCURRENCY"] = "7",
        };

        var result = await SupervisorCli.RunAsync(output, environment, "--app", artifacts.TestApp, "-c", file, "--max-requests", "9", "--print-config");

        Assert.Equal(0, result.ExitCode);
        var report = result.StandardOutput;
        Assert.Matches(@"""workers"": 4,\s+// --workers in \$SUPERVISOR_CMD_ARGS", report);
        Assert.Matches(@"""timeout"": 12,\s+// \$SUPERVISOR_TIMEOUT", report);
        Assert.Matches($@"""keep_alive"": 5,\s+// {Regex.Escape(file)}: ""keepalive""", report);
        Assert.Matches(@"""max_requests"": 9,\s+// --max-requests", report);
        Assert.Matches(@"""backlog"": 2048,\s+// default \(Gunicorn's\)", report);
        Assert.Matches($@"""app"": ""{Regex.Escape(artifacts.TestApp)}"",\s+// --app", report);
    }

    [Fact]
    public async Task A_reload_reads_the_config_file_again_and_the_new_workers_follow_it()
    {
        var artifacts = await Artifacts.GetAsync();
        var file = WriteConfig("""{ "workers": 2, "env": { "GREETING": "first" } }""");
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--config", file);
        using var client = supervisor.CreateClient();
        Assert.Equal("first", await client.GetStringAsync("/env/GREETING"));

        WriteConfig("""{ "workers": 3, "env": { "GREETING": "second" } }""", file);
        var linesBefore = supervisor.LineCount;
        supervisor.Signal(Posix.SIGHUP);
        var complete = await supervisor.WaitForLogAsync(@"Reload complete: generation 2 serving \(pids ([\d, ]+)\)", ReloadTimeout, linesBefore);

        var newPids = complete.Groups[1].Value.Split(", ").Select(int.Parse).ToHashSet();
        Assert.Equal(3, newPids.Count);
        var servedBy = new HashSet<int>();
        for (var i = 0; i < 300 && servedBy.Count < 3; i++)
        {
            servedBy.Add((await WhoAmI.GetAsync(client)).Pid);
        }
        Assert.Equal(newPids.Order(), servedBy.Order());
        Assert.Equal("second", await client.GetStringAsync("/env/GREETING"));
    }

    [Fact]
    public async Task A_reload_changes_the_log_level_max_requests_and_timeout_for_the_new_workers()
    {
        var artifacts = await Artifacts.GetAsync();
        var file = WriteConfig("""{ "workers": 1, "loglevel": "info" }""");
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--config", file);
        using var client = supervisor.CreateClient();
        await AbandonDownloadAsync(client); // Logged at DEBUG only: not at info.

        WriteConfig("""{ "workers": 1, "loglevel": "debug", "max_requests": 20, "max_requests_jitter": 0, "timeout": 3 }""", file);
        var linesBefore = supervisor.LineCount;
        supervisor.Signal(Posix.SIGHUP);
        var worker = int.Parse((await supervisor.WaitForLogAsync(@"Reload complete: generation 2 serving \(pids (\d+)\)", ReloadTimeout, linesBefore)).Groups[1].Value);

        // The log level: a client that goes away is a DEBUG line.
        await AbandonDownloadAsync(client);
        await supervisor.WaitForLogAsync(@"\[DEBUG\] Client of POST /download at worker \S+ went away", ReloadTimeout, linesBefore);
        Assert.Single(Regex.Matches(supervisor.Log, "went away"));

        // max_requests: the new worker is recycled after its 20th request.
        for (var i = 0; i < 25; i++)
        {
            Assert.Equal("ok", await client.GetStringAsync("/"));
        }
        await supervisor.WaitForLogAsync($@"Recycling worker 0 \(pid: {worker}, generation 2\): --max-requests reached: 20 with jitter", ReloadTimeout, linesBefore);
        var replacement = int.Parse((await supervisor.WaitForLogAsync($@"Recycled worker 0: pid {worker} replaced by pid (\d+)", ReloadTimeout, linesBefore)).Groups[1].Value);

        // timeout: a frozen worker is killed after 3 s of silence, not the 30 s it booted with before.
        var frozenAt = System.Diagnostics.Stopwatch.GetTimestamp();
        Posix.Kill(replacement, Posix.SIGSTOP);
        await supervisor.WaitForLogAsync($@"WORKER TIMEOUT \(pid: {replacement}\)", TimeSpan.FromSeconds(25), linesBefore);
        var detected = System.Diagnostics.Stopwatch.GetElapsedTime(frozenAt);
        output.WriteLine($"frozen worker detected after {detected.TotalSeconds:F1} s");
        Assert.True(detected >= TimeSpan.FromSeconds(2.5), $"detected after {detected.TotalSeconds:F1} s, before the 3 s timeout");
    }

    // A POST takes YARP's path, whose client-went-away line is at DEBUG; the client reads the head and leaves.
    private static async Task AbandonDownloadAsync(HttpClient client)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/download?mb=64") { Content = new ByteArrayContent([1]) };
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task A_reload_with_a_bad_file_keeps_the_running_configuration_starts_nothing_and_loses_no_request()
    {
        var artifacts = await Artifacts.GetAsync();
        var file = WriteConfig("""{ "workers": 2 }""");
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--config", file);
        var serving = supervisor.BootedWorkerPids.ToHashSet();
        await using var load = LoadGenerator.Start(supervisor.BaseAddress, "/", connections: 4);
        await load.WaitForMoreSuccessesAsync(100, TimeSpan.FromSeconds(20));

        WriteConfig("""{ "workers": 0 }""", file);
        var linesBefore = supervisor.LineCount;
        supervisor.Signal(Posix.SIGHUP);
        await supervisor.WaitForLogAsync($@"Reload failed: {Regex.Escape(file)}: ""workers"": must be a whole number, 1 or more \(got '0'\)\. The running configuration and workers stay", ReloadTimeout, linesBefore);
        await load.WaitForMoreSuccessesAsync(100, TimeSpan.FromSeconds(20));
        Assert.Empty(supervisor.BootedWorkerPidsSince(linesBefore));
        Assert.All(serving, pid => Assert.True(Posix.IsAlive(pid)));

        WriteConfig("""{ "workers": 2, "max_requests": 100000 }""", file);
        linesBefore = supervisor.LineCount;
        supervisor.Signal(Posix.SIGHUP);
        await supervisor.WaitForLogAsync("Reload complete: generation 2 serving", ReloadTimeout, linesBefore);
        await load.WaitForMoreSuccessesAsync(100, TimeSpan.FromSeconds(20));
        await load.StopAsync();

        output.WriteLine($"load: {load.Summary()}");
        Assert.Equal(0, load.Failed);
    }

    [Fact]
    public async Task A_reload_that_changes_a_setting_read_only_at_start_says_it_needs_a_restart()
    {
        var artifacts = await Artifacts.GetAsync();
        var file = WriteConfig("""{ "backlog": 100 }""");
        await using var supervisor = await SupervisorProcess.StartReadyAsync(output, artifacts.TestApp, "--config", file, "--workers", "1");

        WriteConfig("""{ "backlog": 200 }""", file);
        var linesBefore = supervisor.LineCount;
        supervisor.Signal(Posix.SIGHUP);

        await supervisor.WaitForLogAsync(@"\[WARNING\] backlog changed \(.*: 200\), which needs a restart; 100 stays until then", ReloadTimeout, linesBefore);
        await supervisor.WaitForLogAsync("Reload complete: generation 2 serving", ReloadTimeout, linesBefore);
    }

    private string WriteConfig(string content, string? path = null)
    {
        path ??= Path.Combine(_scratch, $"supervisor-{Guid.NewGuid():N}.json");
        File.WriteAllText(path + ".new", content);
        File.Move(path + ".new", path, overwrite: true);
        return path;
    }
}
