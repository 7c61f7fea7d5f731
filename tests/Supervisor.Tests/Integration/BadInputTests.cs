using System.Net;
using System.Net.Sockets;
using CliWrap;
using CliWrap.Buffered;
using Supervisor.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Supervisor.Tests.Integration;

/// <summary>
/// Bad input is refused with one line that names the problem and the fix, a documented exit code,
/// and nothing left behind: no worker started, no socket directory created.
/// </summary>
public sealed class BadInputTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _scratch = Directory.CreateTempSubdirectory("sup-bad-").FullName;

    public void Dispose() => Directory.Delete(_scratch, recursive: true);

    [Fact]
    public async Task A_missing_app_is_refused()
    {
        var result = await RunAsync("--app", Path.Combine(_scratch, "Missing.dll"));

        AssertRefused(result, 2, "does not exist");
    }

    [Fact]
    public async Task An_app_that_is_not_an_aspnetcore_app_is_refused()
    {
        var artifacts = await Artifacts.GetAsync();
        var console = Path.Combine(_scratch, "Console.dll");
        File.Copy(artifacts.TestApp, console);
        await File.WriteAllTextAsync(Path.Combine(_scratch, "Console.runtimeconfig.json"),
            """{ "runtimeOptions": { "framework": { "name": "Microsoft.NETCore.App", "version": "10.0.0" } } }""");

        var result = await RunAsync("--app", console);

        AssertRefused(result, 2, "is not an ASP.NET Core app");
    }

    [Fact]
    public async Task A_dll_that_is_not_an_app_is_refused()
    {
        var artifacts = await Artifacts.GetAsync();
        var library = Path.Combine(Path.GetDirectoryName(artifacts.Supervisor)!, "Supervisor.WorkerHost.dll");

        var result = await RunAsync("--app", library);

        AssertRefused(result, 2, "runtimeconfig.json is missing");
    }

    [Theory]
    [InlineData("--workers", "0", "--workers: must be a whole number, 1 or more")]
    [InlineData("--workers", "many", "--workers")]
    [InlineData("--frobnicate", "1", "--frobnicate")]
    [InlineData("--bind", "1.2.3", "--bind: '1.2.3' is not an address")]
    [InlineData("--bind", "127.0.0.1:99999", "not a port number")]
    [InlineData("--env", "NOEQUALS", "--env: must be KEY=VALUE")]
    [InlineData("--graceful-timeout", "-1", "--graceful-timeout: must be a whole number")]
    public async Task Bad_options_are_refused_before_anything_starts(string option, string value, string expected)
    {
        var artifacts = await Artifacts.GetAsync();

        var result = await RunAsync("--app", artifacts.TestApp, option, value, "--bind", "127.0.0.1:0");

        AssertRefused(result, 2, expected);
    }

    [Theory]
    [InlineData("unknown option '--worker' (did you mean --workers?)", "--worker", "4")]
    [InlineData("unknown option '--max-request' (did you mean --max-requests?)", "--max-request", "100")]
    [InlineData("send SIGHUP to load the app from disk again", "--reload")]
    [InlineData("--daemon is not offered: run the supervisor under systemd", "--daemon")]
    [InlineData("-D (--daemon) is not offered", "-D")]
    [InlineData("--preload is not offered: .NET cannot fork", "--preload")]
    [InlineData("--threads is not needed", "--threads", "4")]
    [InlineData("-k (--worker-class) is not offered", "-k", "gevent")]
    [InlineData("--user is not offered: start the supervisor as the user", "--user", "www-data")]
    [InlineData("--statsd-host is not offered", "--statsd-host", "localhost:8125")]
    [InlineData("unexpected argument 'myapp:app': the app is given with --app PATH", "myapp:app")]
    public async Task A_gunicorn_habit_or_a_misspelt_option_is_answered_with_what_to_do(string expected, params string[] arguments)
    {
        var artifacts = await Artifacts.GetAsync();

        var result = await RunAsync(["--app", artifacts.TestApp, .. arguments, "--bind", "127.0.0.1:0"]);

        AssertRefused(result, 2, expected);
    }

    [Fact]
    public async Task A_python_config_file_is_refused_with_how_to_write_it_as_json()
    {
        var artifacts = await Artifacts.GetAsync();
        var config = Path.Combine(Directory.CreateTempSubdirectory("sup-pyconf-").FullName, "gunicorn.conf.py");
        await File.WriteAllTextAsync(config, "workers = 4\nbind = '0.0.0.0:8000'\n");
        try
        {
            var result = await RunAsync("--app", artifacts.TestApp, "-c", config, "--bind", "127.0.0.1:0");

            AssertRefused(result, 2, "Python config files are not read: write the same settings as JSON keys");
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(config)!, recursive: true);
        }
    }

    [Fact]
    public async Task A_bad_web_concurrency_is_refused()
    {
        var artifacts = await Artifacts.GetAsync();

        var result = await RunAsync(new Dictionary<string, string?> { ["WEB_CONCURRENCY"] = "lots" }, "--app", artifacts.TestApp);

        AssertRefused(result, 2, "WEB_CONCURRENCY='lots'");
    }

    [Fact]
    public async Task A_port_already_in_use_is_refused_with_no_worker_started()
    {
        var artifacts = await Artifacts.GetAsync();
        using var occupant = new TcpListener(IPAddress.Loopback, 0);
        occupant.Start();
        var port = ((IPEndPoint)occupant.LocalEndpoint).Port;
        var socketDirectory = Path.Combine(_scratch, "run");

        var result = await RunAsync("--app", artifacts.TestApp, "--bind", $"127.0.0.1:{port}", "--socket-dir", socketDirectory);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("address is already in use", result.StandardError);
        Assert.DoesNotContain("Booting worker", result.StandardError);
        Assert.False(Directory.Exists(socketDirectory), "the socket directory is removed again");
    }

    [Fact]
    public async Task A_socket_directory_others_can_open_is_refused_and_left_alone()
    {
        var artifacts = await Artifacts.GetAsync();
        var shared = Directory.CreateDirectory(Path.Combine(_scratch, "shared")).FullName;
        File.SetUnixFileMode(shared, (UnixFileMode)0b111_111_111);
        var bystander = Path.Combine(shared, "w0-1.sock");
        await File.WriteAllTextAsync(bystander, "not ours to delete");

        var result = await RunAsync("--app", artifacts.TestApp, "--socket-dir", shared, "--bind", "127.0.0.1:0");

        AssertRefused(result, 2, "it must be 700");
        Assert.True(File.Exists(bystander));
    }

    [Fact]
    public async Task A_socket_directory_that_is_a_symbolic_link_is_refused()
    {
        var artifacts = await Artifacts.GetAsync();
        var target = Directory.CreateDirectory(Path.Combine(_scratch, "target")).FullName;
        File.SetUnixFileMode(target, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var link = Path.Combine(_scratch, "link");
        File.CreateSymbolicLink(link, target);

        var result = await RunAsync("--app", artifacts.TestApp, "--socket-dir", link, "--bind", "127.0.0.1:0");

        AssertRefused(result, 2, "is a symbolic link");
        Assert.Empty(Directory.GetFileSystemEntries(target));
    }

    [Fact]
    public async Task A_socket_directory_owned_by_another_user_is_refused()
    {
        var artifacts = await Artifacts.GetAsync();
        // As root, a private directory given to nobody (uid 65534); as anyone else, "/", which root owns.
        var (foreign, owner) = Posix.IsRoot ? (Directory.CreateDirectory(Path.Combine(_scratch, "foreign")).FullName, 65534) : ("/", 0);
        if (Posix.IsRoot)
        {
            File.SetUnixFileMode(foreign, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            var chown = await CliWrap.Cli.Wrap("chown").WithArguments([$"{owner}", foreign]).WithValidation(CommandResultValidation.None).ExecuteBufferedAsync();
            Assert.True(chown.ExitCode == 0, $"chown as root failed: {chown.StandardError}");
        }

        var result = await RunAsync("--app", artifacts.TestApp, "--socket-dir", foreign, "--bind", "127.0.0.1:0");

        AssertRefused(result, 2, $"is owned by uid {owner}");
    }

    [Fact]
    public async Task A_supervisor_installed_without_its_worker_host_refuses_to_start()
    {
        var artifacts = await Artifacts.GetAsync();
        var lonely = Path.Combine(_scratch, "supervisor");
        File.Copy(artifacts.Supervisor, lonely); // The native executable alone, without Supervisor.WorkerHost.dll.

        var result = await CliWrap.Cli.Wrap(lonely)
            .WithArguments(["--app", artifacts.TestApp, "--bind", "127.0.0.1:0"])
            .WithValidation(CommandResultValidation.None)
            .ExecuteBufferedAsync();
        output.WriteLine($"exit {result.ExitCode}\n{result.StandardError}");

        Assert.Equal(1, result.ExitCode);
        var line = Assert.Single(result.StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("Supervisor.WorkerHost.dll' is missing beside the supervisor", line);
        Assert.DoesNotContain("Booting worker", result.StandardError);
    }

    [Fact]
    public async Task Workers_that_fail_at_start_end_the_supervisor_with_exit_3_and_their_last_words()
    {
        var artifacts = await Artifacts.GetAsync();
        var socketDirectory = Path.Combine(_scratch, "run");

        var result = await RunAsync("--app", artifacts.TestApp, "--workers", "2", "--bind", "127.0.0.1:0", "--socket-dir", socketDirectory,
            "--env", "TESTAPP_FAIL_AT_START=cannot open database 'orders'");

        Assert.Equal(3, result.ExitCode);
        Assert.Contains("Worker failed to boot", result.StandardError);
        Assert.Contains("cannot open database 'orders'", result.StandardError);
        Assert.False(Directory.Exists(socketDirectory));
        AssertNoWorkerLeft(result.StandardError);
    }

    [Fact]
    public async Task Workers_that_never_become_ready_end_the_supervisor_at_the_boot_timeout()
    {
        var artifacts = await Artifacts.GetAsync();

        var result = await RunAsync("--app", artifacts.TestApp, "--workers", "2", "--bind", "127.0.0.1:0", "--boot-timeout", "2",
            "--env", "TESTAPP_START_DELAY_MS=60000");

        Assert.Equal(3, result.ExitCode);
        Assert.Contains("was not ready within 2 s", result.StandardError);
        AssertNoWorkerLeft(result.StandardError);
    }

    private static void AssertRefused(BufferedCommandResult result, int exitCode, string expected) =>
        SupervisorCli.AssertRefused(result, exitCode, expected);

    private static void AssertNoWorkerLeft(string log)
    {
        var pids = System.Text.RegularExpressions.Regex.Matches(log, @"Booting worker with pid: (\d+)").Select(m => int.Parse(m.Groups[1].Value)).ToList();
        Assert.NotEmpty(pids);
        Assert.All(pids, pid => Assert.False(Posix.IsAlive(pid), $"worker {pid} was left running"));
    }

    private Task<BufferedCommandResult> RunAsync(params string[] arguments) => SupervisorCli.RunAsync(output, arguments);

    private Task<BufferedCommandResult> RunAsync(IReadOnlyDictionary<string, string?> environment, params string[] arguments) =>
        SupervisorCli.RunAsync(output, environment, arguments);
}
