using System.CommandLine;
using Supervisor.Cli;
using Supervisor.WorkerHost;

namespace Supervisor.Configuration;

/// <summary>
/// Makes the options from every source, in Gunicorn's order of precedence: command line >
/// SUPERVISOR_CMD_ARGS > SUPERVISOR_* variables > config file > defaults (some of which, as in Gunicorn,
/// come from WEB_CONCURRENCY, PORT or FORWARDED_ALLOW_IPS). Called at start, and again on SIGHUP, when the
/// config file is read anew while the command line and environment stay as they were.
/// </summary>
internal sealed class ConfigurationLoader(SupervisorCommand command, ParseResult commandLine, IReadOnlyDictionary<string, string> environment)
{
    public const string CommandArgsVariable = "SUPERVISOR_CMD_ARGS";

    // The variables the supervisor sets for its workers: not settings, and not typos of settings.
    private static readonly HashSet<string> WorkerVariables =
    [
        WorkerProtocol.ControlSocketVariable, WorkerProtocol.WorkerKeyVariable, WorkerProtocol.WorkerIdVariable,
        WorkerProtocol.WorkerGenerationVariable, WorkerProtocol.ListenUrlVariable, WorkerProtocol.DataProtectionDirectoryVariable,
        WorkerProtocol.ApplicationNameVariable, WorkerProtocol.HeartbeatIntervalVariable, WorkerProtocol.HeaderAllowanceVariable,
        WorkerProtocol.ListenHandlesVariable, WorkerProtocol.HandoffSocketVariable, WorkerProtocol.HandoffListenersVariable,
        WorkerProtocol.AcceptShareVariable, WorkerProtocol.RequestLimitVariable, WorkerProtocol.KeepAliveVariable,
        WorkerProtocol.ForwardedAllowIpsVariable, WorkerProtocol.CertFileVariable, WorkerProtocol.KeyFileVariable,
        WorkerProtocol.AccessLogSocketVariable, WorkerProtocol.AccessLogFormatVariable,
    ];

    /// <summary>Reads every source and checks every value; throws <see cref="UsageException"/> naming the source, the setting and the reason.</summary>
    public LoadedConfiguration Load()
    {
        var warnings = new List<string>();
        // Highest precedence first.
        var fromCommandLine = command.GivenSettings(commandLine, new SettingSource(SourceKind.CommandLine, ""));
        var fromCommandArgs = ReadCommandArgsVariable();
        var fromVariables = ReadSettingVariables(warnings);
        var configFile = WinningValue(Settings.Config, fromCommandLine, fromCommandArgs, fromVariables) is { } configValue
            ? (string?)Read(Settings.Config, configValue)
            : null;
        var fromFile = configFile is null ? [] : ConfigFile.Read(configFile);

        var effective = new Dictionary<Setting, EffectiveSetting>();
        foreach (var setting in Settings.All)
        {
            effective[setting] = WinningValue(setting, fromCommandLine, fromCommandArgs, fromVariables, fromFile) is { } given
                ? new EffectiveSetting(setting, Read(setting, given), given.Source)
                : DefaultOf(setting);
        }
        if (SocketActivation.PassedSockets(environment, Environment.ProcessId) is { } passed)
        {
            var bind = effective[Settings.Bind];
            if (bind.Source.Kind != SourceKind.Default)
            {
                warnings.Add($"bind {Settings.Bind.Format(bind.Value)} (from {bind.Source.Where}) is not used: systemd passed {passed.Count} listening sockets (socket activation), which are served instead");
            }
            effective[Settings.Bind] = new EffectiveSetting(Settings.Bind, passed, new SettingSource(SourceKind.SocketActivation, "$LISTEN_FDS"));
        }
        if (UpgradeHandover.FromEnvironment(environment) is { } handover)
        {
            var source = new SettingSource(SourceKind.Upgrade, $"${UpgradeHandover.Variable}");
            effective[Settings.Bind] = new EffectiveSetting(Settings.Bind, handover.Binds.ToList<BindAddress>(), source);
            if (handover.AdminBind is { } admin)
            {
                effective[Settings.AdminBind] = new EffectiveSetting(Settings.AdminBind, admin, source);
            }
        }
        return Build([.. Settings.All.Select(setting => effective[setting])], configFile, warnings);
    }

    /// <summary>
    /// Reads the configuration again for a reload. Settings read only at start (the addresses, limits,
    /// socket and key directories) keep their running values; a change to one of them is reported.
    /// </summary>
    public LoadedConfiguration Reload(LoadedConfiguration running)
    {
        var fresh = Load();
        var warnings = fresh.Warnings.Except(running.Warnings).ToList();
        var merged = new List<EffectiveSetting>();
        for (var i = 0; i < fresh.Settings.Count; i++)
        {
            var (was, now) = (running.Settings[i], fresh.Settings[i]);
            var changed = was.Setting.Format(was.Value) != now.Setting.Format(now.Value);
            if (changed && now.Setting.OnReload == ReloadEffect.NeedsRestart)
            {
                warnings.Add($"{now.Setting.Key} changed ({now.Source.Where}: {now.Setting.Format(now.Value)}), which needs a restart; {was.Setting.Format(was.Value)} stays until then");
                merged.Add(was);
            }
            else
            {
                merged.Add(now);
            }
        }
        return Build(merged, fresh.Options.ConfigFile, warnings);
    }

    private static GivenValue? WinningValue(Setting setting, params Dictionary<Setting, GivenValue>[] sourcesByPrecedence) =>
        sourcesByPrecedence.Select(source => source.GetValueOrDefault(setting)).FirstOrDefault(given => given is not null);

    private static object? Read(Setting setting, GivenValue given)
    {
        try
        {
            return setting.ReadBoxed(given.Values);
        }
        catch (SettingValueException exception)
        {
            throw new UsageException($"{given.Source.Where}: {exception.Message}");
        }
    }

    private EffectiveSetting DefaultOf(Setting setting)
    {
        foreach (var name in setting.DefaultVariables)
        {
            if (!environment.TryGetValue(name, out var text) || string.IsNullOrWhiteSpace(text))
            {
                continue;
            }
            var source = new SettingSource(SourceKind.DefaultVariable, $"${name}");
            try
            {
                return new EffectiveSetting(setting, setting.ReadDefaultVariable(name, text), source);
            }
            catch (SettingValueException exception)
            {
                throw new UsageException($"${name}='{text}' (the default of {setting.Flag}): {exception.Message}; fix it or unset it");
            }
        }
        return new EffectiveSetting(setting, setting.DefaultBoxed, SettingSource.Default);
    }

    private Dictionary<Setting, GivenValue> ReadCommandArgsVariable()
    {
        if (!environment.TryGetValue(CommandArgsVariable, out var text) || string.IsNullOrWhiteSpace(text))
        {
            return [];
        }
        IReadOnlyList<string> arguments;
        try
        {
            arguments = CommandArgs.Split(text);
        }
        catch (SettingValueException exception)
        {
            throw new UsageException($"${CommandArgsVariable} {exception.Message}; quote it as a shell would");
        }
        var result = command.Parse(arguments);
        if (result.Errors.Count > 0)
        {
            throw new UsageException($"${CommandArgsVariable}: {CommandLineHints.Explain(result).TrimEnd('.')}");
        }
        if (result.GetValue(command.CheckConfig) || result.GetValue(command.PrintConfig) || result.UnmatchedTokens.Count > 0)
        {
            throw new UsageException($"${CommandArgsVariable} may hold settings only; give --check-config and --print-config on the command line");
        }
        return command.GivenSettings(result, new SettingSource(SourceKind.CommandArgsVariable, $" in ${CommandArgsVariable}"));
    }

    private Dictionary<Setting, GivenValue> ReadSettingVariables(List<string> warnings)
    {
        var given = new Dictionary<Setting, GivenValue>();
        var byVariable = Settings.All.Where(s => s.HasEnvironmentVariable).ToDictionary(s => s.EnvironmentVariable, StringComparer.Ordinal);
        foreach (var (name, text) in environment)
        {
            if (!name.StartsWith("SUPERVISOR_", StringComparison.Ordinal) || name is CommandArgsVariable or UpgradeHandover.Variable || WorkerVariables.Contains(name))
            {
                continue;
            }
            if (!byVariable.TryGetValue(name, out var setting))
            {
                warnings.Add($"${name} is not a setting and is ignored; the variables are SUPERVISOR_ and an option's long name, such as SUPERVISOR_MAX_REQUESTS");
                continue;
            }
            IReadOnlyList<string> values = setting.Shape == SettingShape.List ? [.. ValueReaders.CommaSeparated([text])] : [text];
            given[setting] = new GivenValue(values, new SettingSource(SourceKind.EnvironmentVariable, $"${name}"));
        }
        return given;
    }

    /// <summary>The options type from the values, with the checks that span settings.</summary>
    private static LoadedConfiguration Build(IReadOnlyList<EffectiveSetting> effective, string? configFile, List<string> warnings)
    {
        var values = new SettingValues(effective.ToDictionary(setting => setting.Setting));
        var app = values.Get(Settings.App)
            ?? throw new UsageException("no app to run: give its main .dll or executable with --app PATH (or \"app\" in the config file, or $SUPERVISOR_APP)");
        var certFile = values.Get(Settings.CertFile);
        var keyFile = values.Get(Settings.KeyFile);
        if ((certFile is null) != (keyFile is null))
        {
            throw new UsageException($"{(certFile is null ? "--keyfile" : "--certfile")} needs {(certFile is null ? "--certfile" : "--keyfile")} too: HTTPS takes a certificate and its private key");
        }
        var h2c = values.Get(Settings.Bind).FirstOrDefault(bind => bind.CleartextHttp2);
        if (h2c is not null && certFile is not null)
        {
            throw new UsageException($"--bind {h2c} is HTTP/2 without TLS, but --certfile serves every address over TLS (with HTTP/2 already); drop h2c: or the certificate");
        }
        if (h2c is not null && values.Get(Settings.WorkerProtocol) == WorkerProtocolVersion.Http1)
        {
            throw new UsageException($"--bind {h2c} serves gRPC and h2c clients, whose calls need HTTP/2 to the workers too; drop --worker-protocol http1");
        }
        if (values.Get(Settings.AdminBind) is { } admin)
        {
            if ((admin is FdBind && effective.First(setting => setting.Setting == Settings.AdminBind).Source.Kind != SourceKind.Upgrade) || admin.CleartextHttp2)
            {
                throw new UsageException($"--admin-bind {admin}: give HOST:PORT or unix:PATH");
            }
            // Port 0 is a different free port each time it is bound: never the same address.
            if (admin is not TcpBind { Port: 0 } && values.Get(Settings.Bind).Any(bind => bind.ToString() == admin.ToString()))
            {
                throw new UsageException($"--admin-bind {admin} is also a --bind address: the health endpoints are never served on the public side; give them a port or a unix: path of their own");
            }
        }
        var balancer = values.Get(Settings.BalancerSetting);
        if (balancer.WorkersServeClients())
        {
            CheckWorkersServeClients(balancer.Name(), app, values, effective, warnings);
        }
        if (values.Get(Settings.MaxRequestsJitter) > 0 && values.Get(Settings.MaxRequests) == 0)
        {
            warnings.Add("--max-requests-jitter has no effect without --max-requests");
        }
        var options = new SupervisorOptions
        {
            App = app,
            Workers = values.Get(Settings.Workers),
            ChangeDirectory = values.Get(Settings.Chdir),
            WorkerEnvironment = values.Get(Settings.Env),
            Balancer = balancer,
            WorkerProtocol = values.Get(Settings.WorkerProtocol),
            StickySessions = values.Get(Settings.StickySessions),
            DataProtectionDirectory = values.Get(Settings.DataProtectionDir),
            SocketDirectory = values.Get(Settings.SocketDir),
            Timeout = values.Get(Settings.Timeout),
            GracefulTimeout = values.Get(Settings.GracefulTimeout),
            BootTimeout = values.Get(Settings.BootTimeout),
            RequestTimeout = values.Get(Settings.RequestTimeout),
            MaxRequests = values.Get(Settings.MaxRequests),
            MaxRequestsJitter = values.Get(Settings.MaxRequestsJitter),
            MaxMemoryBytes = values.Get(Settings.MaxMemory) * 1_048_576L,
            Binds = values.Get(Settings.Bind),
            AdminBind = values.Get(Settings.AdminBind),
            Backlog = values.Get(Settings.Backlog),
            WorkerConnections = values.Get(Settings.WorkerConnections),
            MaxQueue = values.Get(Settings.MaxQueue),
            KeepAlive = values.Get(Settings.KeepAlive),
            HeaderTimeout = values.Get(Settings.HeaderTimeout),
            SendTimeout = values.Get(Settings.SendTimeout),
            LimitRequestLine = values.Get(Settings.LimitRequestLine),
            LimitRequestFields = values.Get(Settings.LimitRequestFields),
            LimitRequestFieldSize = values.Get(Settings.LimitRequestFieldSize),
            LimitRequestBody = values.Get(Settings.LimitRequestBody),
            ForwardedAllowIps = values.Get(Settings.ForwardedAllowIps),
            CertFile = certFile,
            KeyFile = keyFile,
            ErrorLogFile = values.Get(Settings.ErrorLogFile),
            LogLevel = values.Get(Settings.LogLevel),
            LogFormat = values.Get(Settings.LogFormat),
            AccessLogFile = values.Get(Settings.AccessLogFile),
            AccessLogFormat = values.Get(Settings.AccessLogFormatSetting),
            ConfigFile = configFile,
            Pidfile = values.Get(Settings.Pidfile),
        };
        return new LoadedConfiguration(options, effective, warnings);
    }

    // What --balancer kernel and handoff cannot do is refused in words when it would change what a user
    // gets, and named in a warning when it only has no effect (docs/balancer.md says why each).
    private static void CheckWorkersServeClients(string balancer, AppTarget app, SettingValues values, IReadOnlyList<EffectiveSetting> effective, List<string> warnings)
    {
        if (!app.StartupHooksSupported)
        {
            throw new UsageException($"--balancer {balancer} needs the worker-host inside each worker to serve the clients, and {app.Path} cannot load it (a native or trimmed app); use --balancer proxy");
        }
        if (values.Get(Settings.StickySessions))
        {
            throw new UsageException($"--sticky-sessions needs --balancer proxy: with --balancer {balancer} each connection, not each request, goes to a worker, and no proxy reads the cookie");
        }
        var proxyOnly = new Setting[] { Settings.RequestTimeout, Settings.MaxQueue, Settings.WorkerConnections, Settings.WorkerProtocol, Settings.SendTimeout, Settings.HeaderTimeout };
        var given = effective.Where(setting => proxyOnly.Contains(setting.Setting) && setting.Source.Kind != SourceKind.Default).Select(setting => setting.Setting.Flags[0]).ToList();
        if (given.Count > 0)
        {
            warnings.Add($"{string.Join(", ", given)} {(given.Count == 1 ? "has" : "have")} no effect with --balancer {balancer}: no proxy sees the requests");
        }
    }

    private sealed class SettingValues(Dictionary<Setting, EffectiveSetting> effective)
    {
        public T Get<T>(Setting<T> setting) => (T)effective[setting].Value!;
    }
}

/// <summary>The options of one load, every setting's value with where it came from, and what deserves a warning.</summary>
internal sealed record LoadedConfiguration(SupervisorOptions Options, IReadOnlyList<EffectiveSetting> Settings, IReadOnlyList<string> Warnings);
