using System.CommandLine;
using Supervisor.Configuration;

namespace Supervisor.Cli;

/// <summary>
/// The command line, made from the setting declarations (<see cref="Settings.All"/>): one option per
/// setting, in Gunicorn's spelling, plus the actions that are not settings. Values are taken as text
/// here and read by each setting's own reader, exactly as values from the config file and environment.
/// </summary>
internal sealed class SupervisorCommand
{
    public const string Description = """
        Runs an ASP.NET Core app as N worker processes behind one public address, the way Gunicorn runs a
        Python app: the supervisor binds --bind, starts the workers on private Unix sockets, forwards each
        request to a ready worker and keeps the pool healthy.

        Every option can also be set in a JSON config file (-c FILE; keys are the long names, such as
        max_requests), as an environment variable SUPERVISOR_<NAME> (SUPERVISOR_MAX_REQUESTS), or in
        SUPERVISOR_CMD_ARGS. Precedence: command line > SUPERVISOR_CMD_ARGS > SUPERVISOR_* > config file > defaults.

        Signals: TERM graceful stop; INT, QUIT quick stop; HUP reload (config file and app from disk, a new
        generation of workers swapped in when all are ready, abandoned if any fails to boot); TTIN / TTOU one
        worker more / fewer; USR1 reopen log files; USR2 binary upgrade (a new supervisor from the binary on
        disk takes the listening sockets once its workers are ready; the old one drains).
        A running supervisor answers `supervisor status` (its workers, their requests and memory) and
        `supervisor reload [--wait]` (a SIGHUP that can wait for the result) on its command socket.
        Exit codes: 0 clean stop; 1 run-time failure (address in use, ...); 2 bad command line or configuration;
        3 workers failed to boot.
        """;

    private readonly Dictionary<Setting, Option> _settingOptions = [];

    public SupervisorCommand()
    {
        Root = new RootCommand(Description);
        foreach (var setting in Settings.All)
        {
            var option = CreateOption(setting);
            _settingOptions[setting] = option;
            Root.Options.Add(option);
        }
        Root.Options.Add(CheckConfig);
        Root.Options.Add(PrintConfig);
        Root.Options.Add(HelpMarkdown);
        Root.Subcommands.Add(Status.Command);
        Root.Subcommands.Add(Reload.Command);
        // Without an action, a root with subcommands requires one of them; the root runs the supervisor
        // (Program gives it that action), so a command line without a subcommand is complete.
        Root.SetAction(_ => ExitCodes.Success);
    }

    /// <summary><c>supervisor status</c>: the running supervisor's pool.</summary>
    public StatusCommand Status { get; } = new();

    /// <summary><c>supervisor reload</c>: SIGHUP through the command socket, optionally waiting for the result.</summary>
    public ReloadCommand Reload { get; } = new();

    public RootCommand Root { get; }

    public Option<bool> CheckConfig { get; } = new("--check-config")
    {
        Description = "Do what a start does before its first worker, and undo it (read the settings, find the app, load the certificate, bind each address, open the log files, check the key directory), then exit: 0 when a start would get that far, 2 with the file, key and reason for a bad setting, 1 when an address cannot be bound.",
    };

    public Option<bool> PrintConfig { get; } = new("--print-config")
    {
        Description = "Print the effective settings and where each came from, as a config file, and exit. Implies --check-config.",
    };

    /// <summary>Prints the option table of the README, generated from the same declarations as this help.</summary>
    public Option<bool> HelpMarkdown { get; } = new("--help-markdown") { Hidden = true };

    /// <summary>Parses arguments. Response files (@FILE) are off: a value that starts with @ is a value.</summary>
    public ParseResult Parse(IReadOnlyList<string> arguments) =>
        Root.Parse(arguments, new ParserConfiguration { ResponseFileTokenReplacer = null });

    /// <summary>The settings <paramref name="result"/> gives a value for, as text, with where each came from.</summary>
    public Dictionary<Setting, GivenValue> GivenSettings(ParseResult result, SettingSource source)
    {
        var given = new Dictionary<Setting, GivenValue>();
        foreach (var (setting, option) in _settingOptions)
        {
            if (result.GetResult(option) is not { Implicit: false } optionResult)
            {
                continue;
            }
            IReadOnlyList<string> values = setting.Shape switch
            {
                SettingShape.Switch => [result.GetValue((Option<bool>)option) ? "true" : "false"],
                SettingShape.List => result.GetValue((Option<string[]>)option) ?? [],
                _ => [.. optionResult.Tokens.Select(token => token.Value)],
            };
            given[setting] = new GivenValue(values, source with { Where = $"{setting.Flag}{source.Where}" });
        }
        return given;
    }

    private static Option CreateOption(Setting setting)
    {
        var aliases = setting.Flags.Skip(1).ToArray();
        var description = HelpText(setting);
        return setting.Shape switch
        {
            SettingShape.Switch => new Option<bool>(setting.Flag, aliases) { Description = description },
            SettingShape.List => new Option<string[]>(setting.Flag, aliases)
            {
                Description = description,
                HelpName = setting.Meta,
                AllowMultipleArgumentsPerToken = false,
                Arity = ArgumentArity.OneOrMore,
            },
            _ => new Option<string>(setting.Flag, aliases) { Description = description, HelpName = setting.Meta },
        };
    }

    /// <summary>A setting's help: what it does, its default and where that comes from, and whether a reload applies it.</summary>
    public static string HelpText(Setting setting)
    {
        var origin = setting.DefaultOrigin is null ? "" : $" ({setting.DefaultOrigin})";
        var restart = setting.OnReload == ReloadEffect.NeedsRestart ? " Changing it needs a restart." : "";
        return $"{setting.Description} Default: {setting.DefaultText}{origin}.{restart}";
    }
}

/// <summary>How the status and reload commands find a running supervisor: the --pid or --socket-dir it runs with.</summary>
internal abstract class RunningSupervisorCommand
{
    protected RunningSupervisorCommand(string name, string description)
    {
        Command = new Command(name, description) { Pidfile, SocketDirectory };
    }

    public Command Command { get; }

    public Option<string> Pidfile { get; } = new("--pid", "--pidfile", "-p")
    {
        HelpName = "FILE",
        Description = "The pid file the supervisor writes (its --pid): finds its command socket in the default socket directory.",
    };

    public Option<string> SocketDirectory { get; } = new("--socket-dir")
    {
        HelpName = "DIR",
        Description = "The --socket-dir the supervisor runs with. Without this and --pid: the one supervisor this user runs.",
    };
}

internal sealed class StatusCommand : RunningSupervisorCommand
{
    public StatusCommand()
        : base("status", "Print the running supervisor's workers: slot, pid, generation, state, age, requests given, in flight, resident memory.")
    {
        Command.Options.Add(Json);
    }

    public Option<bool> Json { get; } = new("--json") { Description = "Print the supervisor's answer as it came: one JSON object." };
}

internal sealed class ReloadCommand : RunningSupervisorCommand
{
    public static readonly TimeSpan DefaultWaitTimeout = TimeSpan.FromMinutes(5);

    public ReloadCommand()
        : base("reload", "Reload the running supervisor, as SIGHUP does. With --wait, exit when the reload's result is known: 0 the new generation serves; 2 the configuration was refused; 3 a new worker failed to boot and the old generation serves on; 1 the supervisor stopped first or gave no result in time.")
    {
        Command.Options.Add(Wait);
        Command.Options.Add(WaitTimeout);
    }

    public Option<bool> Wait { get; } = new("--wait") { Description = "Wait for the reload's result (for systemd's ExecReload, deploy scripts)." };

    public Option<int> WaitTimeout { get; } = new("--wait-timeout")
    {
        HelpName = "SECONDS",
        Description = $"Give up waiting after this long (exit 1; the reload itself goes on). Default: {(int)DefaultWaitTimeout.TotalSeconds}.",
        DefaultValueFactory = _ => (int)DefaultWaitTimeout.TotalSeconds,
    };
}
