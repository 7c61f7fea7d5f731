using System.Text.RegularExpressions;
using Supervisor.Cli;
using Supervisor.Configuration;
using Supervisor.WorkerHost;

namespace Supervisor.Tests.Unit;

/// <summary>Every source of a setting, their precedence, and the message a bad value gets from each.</summary>
public sealed class ConfigurationLoaderTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("sup-config-").FullName;
    private readonly string _app;

    public ConfigurationLoaderTests()
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
        var options = Load(["--app", _app]).Options;

        Assert.Equal(Settings.DefaultWorkers, options.Workers);
        Assert.Equal("127.0.0.1:8000", Assert.Single(options.Binds).ToString());
        Assert.Equal(TimeSpan.FromSeconds(30), options.GracefulTimeout);
        Assert.Equal(TimeSpan.FromSeconds(30), options.Timeout);
        Assert.Equal(TimeSpan.FromSeconds(2), options.KeepAlive);
        Assert.Equal(2048, options.Backlog);
        Assert.Equal(1000, options.WorkerConnections);
        Assert.Equal(2048, options.MaxQueue);
        Assert.Equal(4094, options.LimitRequestLine);
        Assert.Equal(100, options.LimitRequestFields);
        Assert.Equal(8190, options.LimitRequestFieldSize);
        Assert.Equal("127.0.0.1,::1", options.ForwardedAllowIps.ToString());
        Assert.Equal("-", options.ErrorLogFile);
        Assert.Null(options.AccessLogFile);
        Assert.Equal(AccessLogFormatText, options.AccessLogFormat.Text);
        Assert.Equal(_folder, options.WorkingDirectory);
        Assert.True(options.App.IsDll);
    }

    [Theory]
    [InlineData("ASPNETCORE_HTTP_PORTS", "8080", "0.0.0.0:8080")]
    [InlineData("ASPNETCORE_HTTP_PORTS", "8080;8081", "0.0.0.0:8080 0.0.0.0:8081")]
    [InlineData("ASPNETCORE_URLS", "http://+:80", "0.0.0.0:80")]
    [InlineData("ASPNETCORE_URLS", "http://*:5000/;http://localhost:5001", "0.0.0.0:5000 localhost:5001")]
    [InlineData("ASPNETCORE_URLS", "http://[::1]:5000", "[::1]:5000")]
    [InlineData("ASPNETCORE_URLS", "http://0.0.0.0", "0.0.0.0:80")]
    [InlineData("ASPNETCORE_URLS", "http://unix:/run/app.sock", "unix:/run/app.sock")]
    public void The_bind_defaults_to_where_the_app_alone_would_listen_in_an_official_image(string variable, string value, string binds)
    {
        var loaded = Load(["--app", _app], new Dictionary<string, string> { [variable] = value });

        Assert.Equal(binds, string.Join(' ', loaded.Options.Binds));
        Assert.Equal($"${variable}", SourceOf(loaded, Settings.Bind));
    }

    [Fact]
    public void Port_comes_before_the_urls_and_the_urls_before_the_ports_as_in_aspnetcore()
    {
        var all = new Dictionary<string, string> { ["PORT"] = "5000", ["ASPNETCORE_URLS"] = "http://+:6000", ["ASPNETCORE_HTTP_PORTS"] = "7000" };
        Assert.Equal("0.0.0.0:5000", string.Join(' ', Load(["--app", _app], all).Options.Binds));
        all.Remove("PORT");
        Assert.Equal("0.0.0.0:6000", string.Join(' ', Load(["--app", _app], all).Options.Binds));
        Assert.Equal("127.0.0.1:9000", string.Join(' ', Load(["--app", _app, "--bind", "127.0.0.1:9000"], all).Options.Binds));
    }

    [Theory]
    [InlineData("https://+:443", "$ASPNETCORE_URLS='https://+:443' (the default of --bind): 'https://+:443' is HTTPS: the supervisor serves TLS with --certfile and --keyfile on a --bind address; fix it or unset it")]
    [InlineData("ftp://host:21", "'ftp://host:21' is not an http:// URL")]
    public void Urls_it_cannot_bind_are_refused_naming_the_variable(string value, string expected)
    {
        var refused = Assert.Throws<UsageException>(() => Load(["--app", _app], new Dictionary<string, string> { ["ASPNETCORE_URLS"] = value }));
        Assert.Contains(expected, refused.Message);
    }

    [Theory]
    [InlineData("127.0.0.1:9000", "--admin-bind 127.0.0.1:9000 is also a --bind address: the health endpoints are never served on the public side")]
    [InlineData("fd://3", "--admin-bind fd://3: give HOST:PORT or unix:PATH")]
    [InlineData("h2c:127.0.0.1:9001", "--admin-bind h2c:127.0.0.1:9001: give HOST:PORT or unix:PATH")]
    public void The_health_endpoints_get_an_address_of_their_own(string admin, string expected)
    {
        var refused = Assert.Throws<UsageException>(() => Load(["--app", _app, "--bind", "127.0.0.1:9000", "--admin-bind", admin]));
        Assert.Contains(expected, refused.Message);
    }

    [Fact]
    public void What_the_kernel_balancer_cannot_do_is_refused_in_words()
    {
        var refused = Assert.Throws<UsageException>(() => Load(["--app", _app, "--balancer", "kernel", "--sticky-sessions"]));
        Assert.Contains("--sticky-sessions needs --balancer proxy", refused.Message);
    }

    [Fact]
    public void Proxy_only_options_given_with_the_kernel_balancer_are_named_in_a_warning()
    {
        var loaded = Load(["--app", _app, "--balancer", "kernel", "--request-timeout", "5", "--max-queue", "10"]);
        Assert.Equal(Balancer.Kernel, loaded.Options.Balancer);
        Assert.Contains("--request-timeout, --max-queue have no effect with --balancer kernel", Assert.Single(loaded.Warnings));
        Assert.Empty(Load(["--app", _app, "--balancer", "kernel"]).Warnings);
    }

    [Theory]
    [InlineData("3", 3, "3")]
    [InlineData("3,4:h2c", 3, "3,4:h2c")]
    [InlineData("", 3, null)]
    [InlineData("2", 3, null)] // Below the first descriptor a process inherits beyond its standard streams.
    [InlineData("3,x", 3, null)]
    [InlineData("0,1:h2c", 0, "0,1:h2c")] // Handoff mode numbers its listeners from 0.
    public void The_workers_listeners_are_read_as_the_supervisor_writes_them(string text, int lowest, string? expected)
    {
        var listeners = Supervisor.WorkerHost.KernelListening.ParseListeners(text, lowest);
        Assert.Equal(expected, listeners is null ? null : Supervisor.WorkerHost.KernelListening.Format(listeners));
    }

    [Fact]
    public void Gunicorns_environment_defaults_apply_below_every_explicit_source()
    {
        var environment = new Dictionary<string, string> { ["WEB_CONCURRENCY"] = "5", ["PORT"] = "5000", ["FORWARDED_ALLOW_IPS"] = "10.0.0.0/8" };

        var loaded = Load(["--app", _app], environment);
        Assert.Equal(5, loaded.Options.Workers);
        Assert.Equal("0.0.0.0:5000", Assert.Single(loaded.Options.Binds).ToString());
        Assert.Equal("10.0.0.0/8", loaded.Options.ForwardedAllowIps.ToString());
        Assert.Equal("$WEB_CONCURRENCY", SourceOf(loaded, Settings.Workers));

        var file = WriteConfig("""{ "workers": 3 }""");
        Assert.Equal(3, Load(["--app", _app, "-c", file], environment).Options.Workers);
    }

    [Fact]
    public void The_command_line_beats_cmd_args_which_beat_variables_which_beat_the_file()
    {
        var file = WriteConfig("""{ "workers": 2, "timeout": 11, "keepalive": 7, "max_requests": 100 }""");
        var environment = new Dictionary<string, string>
        {
            ["SUPERVISOR_WORKERS"] = "3",
            ["SUPERVISOR_TIMEOUT"] = "12",
            ["SUPERVISOR_CMD_ARGS"] = "--workers 4 --graceful-timeout 9",
        };

        var loaded = Load(["--app", _app, "-c", file, "--workers", "5"], environment);

        Assert.Equal(5, loaded.Options.Workers);
        Assert.Equal("--workers", SourceOf(loaded, Settings.Workers));
        Assert.Equal(TimeSpan.FromSeconds(9), loaded.Options.GracefulTimeout);
        Assert.Equal("--graceful-timeout in $SUPERVISOR_CMD_ARGS", SourceOf(loaded, Settings.GracefulTimeout));
        Assert.Equal(TimeSpan.FromSeconds(12), loaded.Options.Timeout);
        Assert.Equal("$SUPERVISOR_TIMEOUT", SourceOf(loaded, Settings.Timeout));
        Assert.Equal(TimeSpan.FromSeconds(7), loaded.Options.KeepAlive);
        Assert.Equal($"{file}: \"keepalive\"", SourceOf(loaded, Settings.KeepAlive));
        Assert.Equal(100, loaded.Options.MaxRequests);
        Assert.Equal("default", SourceOf(loaded, Settings.Backlog));
    }

    [Fact]
    public void The_config_file_accepts_the_obvious_spellings_and_gunicorns_names()
    {
        var file = WriteConfig("""
            // Comments and trailing commas are fine.
            {
              "app": "APP",
              "max-requests": 10,
              "maxRequestsJitter": 5,
              "accesslog": "-",
              "access_log_format": "%(h)s %(s)s",
              "raw_env": ["A=1", "B=x=y"],
              "bind": ["127.0.0.1:1", "unix:/tmp/a.sock"],
              "sticky_sessions": true,
              "loglevel": "debug",
            }
            """.Replace("APP", _app, StringComparison.Ordinal));

        var options = Load(["-c", file]).Options;

        Assert.Equal(_app, options.App.Path);
        Assert.Equal(10, options.MaxRequests);
        Assert.Equal(5, options.MaxRequestsJitter);
        Assert.Equal("-", options.AccessLogFile);
        Assert.Equal("%(h)s %(s)s", options.AccessLogFormat.Text);
        Assert.Equal("x=y", options.WorkerEnvironment["B"]);
        Assert.Equal(["127.0.0.1:1", "unix:/tmp/a.sock"], options.Binds.Select(b => b.ToString()));
        Assert.True(options.StickySessions);
        Assert.Equal(LogLevelName.Debug, options.LogLevel);
    }

    [Fact]
    public void Env_may_be_an_object_in_the_file_and_binds_may_be_comma_separated_in_a_variable()
    {
        var file = WriteConfig("""{ "env": { "GREETING": "hi", "N": 3 } }""");

        var options = Load(["--app", _app, "-c", file], new Dictionary<string, string> { ["SUPERVISOR_BIND"] = "127.0.0.1:1,[::1]:2" }).Options;

        Assert.Equal("hi", options.WorkerEnvironment["GREETING"]);
        Assert.Equal("3", options.WorkerEnvironment["N"]);
        Assert.Equal(["127.0.0.1:1", "[::1]:2"], options.Binds.Select(b => b.ToString()));
    }

    [Theory]
    [InlineData("--workers", "0", "--workers: must be a whole number, 1 or more (got '0')")]
    [InlineData("--workers", "many", "--workers: must be a whole number, 1 or more (got 'many')")]
    [InlineData("--timeout", "-1", "--timeout: must be a whole number, 0 or more; 0 turns the check off (got '-1')")]
    [InlineData("--bind", "1.2.3", "--bind: '1.2.3' is not an address")]
    [InlineData("--env", "NOEQUALS", "--env: must be KEY=VALUE (got 'NOEQUALS')")]
    [InlineData("--log-level", "loud", "--log-level: must be one of debug, info, warning, error, critical (got 'loud')")]
    [InlineData("--forwarded-allow-ips", "10.0.0.x", "--forwarded-allow-ips: '10.0.0.x' is not an IP address or network")]
    [InlineData("--access-logformat", "%(h)s %(zz)s", "--access-logformat: has an unknown atom %(zz)s")]
    [InlineData("--limit-request-fields", "40000", "--limit-request-fields: must be a whole number, from 1 to 32768 (got '40000')")]
    public void A_bad_value_on_the_command_line_names_the_option_and_what_it_must_be(string option, string value, string expected)
    {
        var error = Assert.Throws<UsageException>(() => Load(["--app", _app, option, value]));

        Assert.StartsWith(expected, error.Message);
    }

    [Fact]
    public void A_bad_value_in_the_file_names_the_file_and_key()
    {
        var file = WriteConfig("""{ "workers": 0 }""");

        var error = Assert.Throws<UsageException>(() => Load(["--app", _app, "-c", file]));

        Assert.Equal($"{file}: \"workers\": must be a whole number, 1 or more (got '0')", error.Message);
    }

    [Theory]
    [InlineData("""{ "wokers": 4 }""", "\"wokers\" is not a setting (did you mean \"workers\"?)")]
    [InlineData("""{ "workers": 4, "w": 5 }""", "not a setting")]
    [InlineData("""{ "keepalive": 4, "keep_alive": 5 }""", "sets keep_alive again (also as \"keepalive\")")]
    [InlineData("""{ "config": "other.json" }""", "cannot be set in a config file")]
    [InlineData("""{ "bind": { "a": 1 } }""", "must be a value, not an object")]
    [InlineData("""[ 1, 2 ]""", "must hold one JSON object of settings")]
    [InlineData("""{ "workers": 4, """, "not valid JSON at line 1")]
    public void A_bad_file_is_refused_with_the_file_and_the_reason(string content, string expected)
    {
        var file = WriteConfig(content);

        var error = Assert.Throws<UsageException>(() => Load(["--app", _app, "-c", file]));

        Assert.StartsWith(file, error.Message);
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void A_missing_config_file_is_refused()
    {
        var error = Assert.Throws<UsageException>(() => Load(["--app", _app, "-c", Path.Combine(_folder, "none.json")]));

        Assert.Contains("none.json' cannot be read", error.Message);
    }

    [Fact]
    public void Variables_and_cmd_args_are_checked_like_the_command_line()
    {
        var fromVariable = Assert.Throws<UsageException>(() => Load(["--app", _app], new Dictionary<string, string> { ["SUPERVISOR_MAX_REQUESTS"] = "lots" }));
        Assert.StartsWith("$SUPERVISOR_MAX_REQUESTS: must be a whole number", fromVariable.Message);

        var fromDefault = Assert.Throws<UsageException>(() => Load(["--app", _app], new Dictionary<string, string> { ["WEB_CONCURRENCY"] = "lots" }));
        Assert.StartsWith("$WEB_CONCURRENCY='lots' (the default of --workers): must be a whole number", fromDefault.Message);

        var fromCommandArgs = Assert.Throws<UsageException>(() => Load(["--app", _app], new Dictionary<string, string> { ["SUPERVISOR_CMD_ARGS"] = "--frobnicate 1" }));
        Assert.StartsWith("$SUPERVISOR_CMD_ARGS:", fromCommandArgs.Message);
        Assert.Contains("--frobnicate", fromCommandArgs.Message);

        var unquoted = Assert.Throws<UsageException>(() => Load(["--app", _app], new Dictionary<string, string> { ["SUPERVISOR_CMD_ARGS"] = "--env 'A=1" }));
        Assert.Contains("unterminated", unquoted.Message);
    }

    [Fact]
    public void An_unknown_supervisor_variable_is_a_warning_not_a_failure()
    {
        var loaded = Load(["--app", _app], new Dictionary<string, string> { ["SUPERVISOR_WORKRS"] = "4", ["SUPERVISOR_WORKER_ID"] = "0" });

        var warning = Assert.Single(loaded.Warnings);
        Assert.Contains("$SUPERVISOR_WORKRS is not a setting", warning);
    }

    [Fact]
    public void Cross_checks_name_both_sides()
    {
        Assert.Contains("--certfile needs --keyfile too", Assert.Throws<UsageException>(() => Load(["--app", _app, "--certfile", "/tmp/c.pem"])).Message);
        Assert.Contains("no app to run", Assert.Throws<UsageException>(() => Load([])).Message);
        Assert.Contains("--max-requests-jitter has no effect", Assert.Single(Load(["--app", _app, "--max-requests-jitter", "5"]).Warnings));
    }

    [Fact]
    public void A_reload_keeps_settings_that_need_a_restart_and_says_so()
    {
        var file = WriteConfig("""{ "workers": 2, "bind": "127.0.0.1:1" }""");
        var (command, result) = Parse(["--app", _app, "-c", file]);
        var loader = new ConfigurationLoader(command, result, new Dictionary<string, string>());
        var running = loader.Load();

        File.WriteAllText(file, """{ "workers": 3, "bind": "127.0.0.1:2" }""");
        var reloaded = loader.Reload(running);

        Assert.Equal(3, reloaded.Options.Workers);
        Assert.Equal("127.0.0.1:1", Assert.Single(reloaded.Options.Binds).ToString());
        Assert.Contains(reloaded.Warnings, warning => warning.StartsWith("bind changed", StringComparison.Ordinal) && warning.Contains("needs a restart", StringComparison.Ordinal));
    }

    [Fact]
    public void Print_config_is_a_valid_config_file_that_says_where_each_value_came_from()
    {
        var file = WriteConfig("""{ "workers": 3 }""");
        var loaded = Load(["--app", _app, "-c", file, "--max-requests", "50"]);

        var report = ConfigurationReport.Write(loaded);

        Assert.Contains($"\"workers\": 3,", report);
        Assert.Matches($@"""max_requests"": 50,\s+// --max-requests", report);
        Assert.Matches($@"""workers"": 3,\s+// {Regex.Escape(file)}: ""workers""", report);
        var reread = WriteConfig(report);
        var again = Load(["-c", reread]);
        Assert.Equal(3, again.Options.Workers);
        Assert.Equal(50, again.Options.MaxRequests);
        Assert.Equal(_app, again.Options.App.Path);
    }

    private const string AccessLogFormatText = "%(h)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s \"%(f)s\" \"%(a)s\"";

    private static string SourceOf(LoadedConfiguration loaded, Setting setting) =>
        loaded.Settings.Single(s => s.Setting == setting).Source.Where;

    [Fact]
    public void A_supervisor_started_by_an_upgrade_serves_the_sockets_handed_over_in_place_of_its_binds()
    {
        var loaded = Load(["--app", _app, "--bind", "127.0.0.1:8000", "--admin-bind", "127.0.0.1:9000"],
            new Dictionary<string, string> { ["SUPERVISOR_UPGRADE"] = "from=4242;socket=/run/x/command.sock;bind=15,16;admin=17" });

        Assert.Equal("fd://15 fd://16", string.Join(' ', loaded.Options.Binds));
        Assert.Equal("fd://17", loaded.Options.AdminBind?.ToString());
        Assert.Empty(loaded.Warnings); // The variable is the supervisor's own, not a misspelt setting.
    }

    private string WriteConfig(string content)
    {
        var path = Path.Combine(_folder, $"config-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, content);
        return path;
    }

    private static (SupervisorCommand Command, System.CommandLine.ParseResult Result) Parse(string[] arguments)
    {
        var command = new SupervisorCommand();
        var result = command.Parse(arguments);
        Assert.Empty(result.Errors);
        return (command, result);
    }

    private static LoadedConfiguration Load(string[] arguments, Dictionary<string, string>? environment = null)
    {
        var (command, result) = Parse(arguments);
        return new ConfigurationLoader(command, result, environment ?? []).Load();
    }
}
