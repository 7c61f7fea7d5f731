using Supervisor.Cli;

namespace Supervisor.Tests.Unit;

public sealed class SupervisorCommandTests : IDisposable
{
    private readonly string _app;
    private readonly string _folder = Directory.CreateTempSubdirectory("sup-cmd-").FullName;

    public SupervisorCommandTests()
    {
        _app = Path.Combine(_folder, "Api.dll");
        File.WriteAllText(_app, "");
        File.WriteAllText(Path.Combine(_folder, "Api.runtimeconfig.json"),
            """{ "runtimeOptions": { "frameworks": [ { "name": "Microsoft.NETCore.App" }, { "name": "Microsoft.AspNetCore.App" } ] } }""");
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void Defaults_follow_gunicorn_where_they_fit()
    {
        var options = Bind([], _ => null);

        Assert.Equal(SupervisorCommand.DefaultWorkers, options.Workers);
        Assert.Equal("127.0.0.1:8000", Assert.Single(options.Binds).ToString());
        Assert.Equal(TimeSpan.FromSeconds(30), options.GracefulTimeout);
        Assert.Equal(_folder, options.WorkingDirectory);
        Assert.True(options.App.IsDll);
        Assert.True(options.App.StartupHooksSupported);
    }

    [Fact]
    public void Web_concurrency_sets_the_worker_count_unless_the_command_line_does()
    {
        Assert.Equal(5, Bind([], name => name == "WEB_CONCURRENCY" ? "5" : null).Workers);
        Assert.Equal(3, Bind(["-w", "3"], name => name == "WEB_CONCURRENCY" ? "5" : null).Workers);
    }

    [Fact]
    public void Binds_and_env_repeat()
    {
        var options = Bind(["-b", "127.0.0.1:1", "--bind", "unix:/tmp/a.sock", "-e", "A=1", "-e", "B=x=y"], _ => null);

        Assert.Equal(["127.0.0.1:1", "unix:/tmp/a.sock"], options.Binds.Select(b => b.ToString()));
        Assert.Equal("1", options.WorkerEnvironment["A"]);
        Assert.Equal("x=y", options.WorkerEnvironment["B"]);
    }

    [Fact]
    public void A_trimmed_app_without_startup_hooks_is_probed_instead()
    {
        File.WriteAllText(Path.Combine(_folder, "Api.runtimeconfig.json"), """
            { "runtimeOptions": { "framework": { "name": "Microsoft.AspNetCore.App" },
              "configProperties": { "System.StartupHookProvider.IsSupported": false } } }
            """);

        Assert.False(Bind([], _ => null).App.StartupHooksSupported);
    }

    private Configuration.SupervisorOptions Bind(string[] arguments, Func<string, string?> environment)
    {
        var command = new SupervisorCommand();
        var result = command.Root.Parse(["--app", _app, .. arguments]);
        Assert.Empty(result.Errors);
        return command.Bind(result, environment);
    }
}
