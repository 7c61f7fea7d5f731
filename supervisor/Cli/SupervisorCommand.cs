using System.CommandLine;
using System.Globalization;
using Supervisor.Configuration;

namespace Supervisor.Cli;

/// <summary>
/// The command line, in Gunicorn's option names. Every option is declared here once, with its default
/// and where that default comes from; <c>--help</c> is generated from these declarations.
/// </summary>
internal sealed class SupervisorCommand
{
    /// <summary>Two workers: one .NET process already uses every core, so more workers add memory
    /// (70-100 MB each) and no throughput; two keep the app serving while one of them is replaced.</summary>
    public const int DefaultWorkers = 2;

    /// <summary>Gunicorn's default graceful timeout.</summary>
    public const int DefaultGracefulTimeoutSeconds = 30;

    /// <summary>Gunicorn bounds a worker's boot by --timeout, whose default is 30 s.</summary>
    public const int DefaultBootTimeoutSeconds = 30;

    /// <summary>Gunicorn's default worker timeout.</summary>
    public const int DefaultTimeoutSeconds = 30;

    public const string Description = """
        Runs an ASP.NET Core app as N worker processes behind one public address, the way Gunicorn runs a
        Python app: the supervisor binds --bind, starts the workers on private Unix sockets, forwards each
        request to a ready worker (YARP, least busy of two random choices) and keeps the pool healthy.

        Signals: TERM graceful stop; INT, QUIT quick stop; HUP reload (a new generation of workers from
        the app on disk, swapped in when all are ready, abandoned if any fails to boot); TTIN / TTOU one
        worker more / fewer.
        Exit codes: 0 clean stop; 1 run-time failure (address in use, ...); 2 bad command line; 3 workers failed to boot.
        Differences from Gunicorn: --app names a built .NET app instead of a module:variable; the default is
        2 workers instead of 1, because a .NET worker is multi-threaded and uses every core; workers are
        separate 'dotnet' processes, not forks of the master.
        """;

    private readonly Option<string> _app = new("--app")
    {
        Description = "The app to run: its main .dll (run with 'dotnet') or its executable, from 'dotnet build' or 'dotnet publish'.",
        Required = true,
        HelpName = "PATH",
    };

    private readonly Option<int> _workers = new("--workers", "-w")
    {
        Description = $"Number of worker processes. Default: $WEB_CONCURRENCY if set, else {DefaultWorkers}.",
        HelpName = "N",
    };

    private readonly Option<string[]> _bind = new("--bind", "-b")
    {
        Description = $"Address to listen on: HOST:PORT, [IPV6]:PORT or unix:PATH. Repeat for several. Default: 127.0.0.1:{BindAddress.DefaultPort} (Gunicorn's).",
        HelpName = "ADDRESS",
        AllowMultipleArgumentsPerToken = false,
    };

    private readonly Option<string?> _chdir = new("--chdir")
    {
        Description = "Working directory of the workers. Default: the app's folder, so that its appsettings.json is found.",
        HelpName = "DIR",
    };

    private readonly Option<string[]> _env = new("--env", "-e")
    {
        Description = "Set an environment variable in the workers. Repeatable.",
        HelpName = "KEY=VALUE",
    };

    private readonly Option<int> _gracefulTimeout = new("--graceful-timeout")
    {
        Description = "Seconds that in-flight requests and stopping workers get before they are cut off and killed.",
        DefaultValueFactory = _ => DefaultGracefulTimeoutSeconds,
        HelpName = "SECONDS",
    };

    private readonly Option<int> _bootTimeout = new("--boot-timeout")
    {
        Description = "Seconds a new worker has to become ready (its server listening) before it counts as failed to boot.",
        DefaultValueFactory = _ => DefaultBootTimeoutSeconds,
        HelpName = "SECONDS",
    };

    private readonly Option<int> _timeout = new("--timeout", "-t")
    {
        Description = "Seconds of heartbeat silence after which a worker (frozen, deadlocked, stopped) is killed and replaced. 0 turns the check off. A slow request on a live worker is not a reason: see --request-timeout.",
        DefaultValueFactory = _ => DefaultTimeoutSeconds,
        HelpName = "SECONDS",
    };

    private readonly Option<int> _requestTimeout = new("--request-timeout")
    {
        Description = "Seconds without response activity from a worker after which the client gets 504 (the worker lives on). 0 means no limit.",
        DefaultValueFactory = _ => 0,
        HelpName = "SECONDS",
    };

    private readonly Option<int> _maxRequests = new("--max-requests")
    {
        Description = "Recycle a worker after it has served this many requests (overlapped: its replacement is ready first). 0 turns it off.",
        DefaultValueFactory = _ => 0,
        HelpName = "N",
    };

    private readonly Option<int> _maxRequestsJitter = new("--max-requests-jitter")
    {
        Description = "Add a random 0..N to each worker's --max-requests, so workers do not all recycle at once.",
        DefaultValueFactory = _ => 0,
        HelpName = "N",
    };

    private readonly Option<int> _maxMemory = new("--max-memory")
    {
        Description = "Recycle a worker whose resident memory stays above this many MB for 3 s. 0 turns it off. (Not in Gunicorn: PM2's max_memory_restart, uWSGI's reload-on-rss.)",
        DefaultValueFactory = _ => 0,
        HelpName = "MB",
    };

    private readonly Option<string?> _dataProtectionDir = new("--data-protection-dir")
    {
        Description = "The DataProtection key ring all workers share (auth cookies, antiforgery tokens), mode 0700, unless the app configures its own key storage. Default: $XDG_STATE_HOME/supervisor/APP/keys (~/.local/state/...), which survives restarts.",
        HelpName = "DIR",
    };

    private readonly Option<bool> _stickySessions = new("--sticky-sessions")
    {
        Description = "Keep each client on one worker (a cookie) while that worker lives, for apps with in-process state. Off by default.",
    };

    private readonly Option<WorkerProtocolVersion> _workerProtocol = new("--worker-protocol")
    {
        Description = "Protocol from the proxy to the workers: http2 (cleartext, prior knowledge; measured about a third less CPU per request on both sides) or http1.",
        DefaultValueFactory = _ => WorkerProtocolVersion.Http2,
        HelpName = "http2|http1",
    };

    private readonly Option<string?> _socketDir = new("--socket-dir")
    {
        Description = "Directory for the workers' Unix sockets, created with mode 0700 (an existing one must be yours and 0700). Default: a fresh directory under $XDG_RUNTIME_DIR, else the temp directory.",
        HelpName = "DIR",
    };

    private readonly Option<LogLevelName> _logLevel = new("--log-level")
    {
        Description = "Error log level: debug, info, warning, error, critical.",
        DefaultValueFactory = _ => LogLevelName.Info,
        HelpName = "LEVEL",
    };

    public SupervisorCommand()
    {
        Root = new RootCommand(Description)
        {
            _app, _workers, _bind, _chdir, _env, _gracefulTimeout, _bootTimeout,
            _timeout, _requestTimeout, _maxRequests, _maxRequestsJitter, _maxMemory,
            _dataProtectionDir, _stickySessions, _workerProtocol, _socketDir, _logLevel,
        };
    }

    public RootCommand Root { get; }

    /// <summary>Turns a parse without syntax errors into validated options, or throws <see cref="UsageException"/>.</summary>
    public SupervisorOptions Bind(ParseResult result, Func<string, string?> environment)
    {
        var workers = result.GetResult(_workers) is { Implicit: false }
            ? result.GetValue(_workers)
            : WorkersFromEnvironment(environment("WEB_CONCURRENCY"));
        if (workers < 1)
        {
            throw new UsageException($"--workers must be at least 1 (got {workers}); run one worker or more");
        }
        var binds = result.GetValue(_bind) is { Length: > 0 } bindValues
            ? bindValues.Select(BindAddress.Parse).ToArray()
            : [BindAddress.Parse($"127.0.0.1:{BindAddress.DefaultPort}")];

        var chdir = result.GetValue(_chdir);
        if (chdir is not null)
        {
            chdir = Path.GetFullPath(chdir);
            if (!Directory.Exists(chdir))
            {
                throw new UsageException($"--chdir '{result.GetValue(_chdir)}' is not a directory; give an existing folder");
            }
        }

        return new SupervisorOptions
        {
            App = AppTarget.Resolve(result.GetValue(_app)!),
            Workers = workers,
            Binds = binds,
            ChangeDirectory = chdir,
            WorkerEnvironment = ParseEnvironment(result.GetValue(_env) ?? []),
            GracefulTimeout = Seconds(_gracefulTimeout, result.GetValue(_gracefulTimeout), allowZero: true),
            BootTimeout = Seconds(_bootTimeout, result.GetValue(_bootTimeout), allowZero: false),
            Timeout = Seconds(_timeout, result.GetValue(_timeout), allowZero: true),
            RequestTimeout = Seconds(_requestTimeout, result.GetValue(_requestTimeout), allowZero: true),
            MaxRequests = NotNegative(_maxRequests, result.GetValue(_maxRequests)),
            MaxRequestsJitter = NotNegative(_maxRequestsJitter, result.GetValue(_maxRequestsJitter)),
            MaxMemoryBytes = NotNegative(_maxMemory, result.GetValue(_maxMemory)) * 1_048_576L,
            SocketDirectory = result.GetValue(_socketDir) is { } socketDir ? Path.GetFullPath(socketDir) : null,
            LogLevel = result.GetValue(_logLevel),
            DataProtectionDirectory = result.GetValue(_dataProtectionDir) is { } keys ? Path.GetFullPath(keys) : null,
            StickySessions = result.GetValue(_stickySessions),
            WorkerProtocol = result.GetValue(_workerProtocol),
        };
    }

    private static int WorkersFromEnvironment(string? webConcurrency)
    {
        if (string.IsNullOrWhiteSpace(webConcurrency))
        {
            return DefaultWorkers;
        }
        return int.TryParse(webConcurrency, NumberStyles.None, CultureInfo.InvariantCulture, out var workers)
            ? workers
            : throw new UsageException($"WEB_CONCURRENCY='{webConcurrency}' is not a number of workers; set it to a whole number or unset it");
    }

    private static Dictionary<string, string> ParseEnvironment(IEnumerable<string> pairs)
    {
        var environment = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var pair in pairs)
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                throw new UsageException($"--env '{pair}' is not KEY=VALUE; write it as NAME=value");
            }
            environment[pair[..equals]] = pair[(equals + 1)..];
        }
        return environment;
    }

    private static int NotNegative(Option option, int value) =>
        value >= 0 ? value : throw new UsageException($"{option.Name} must be 0 or more (got {value})");

    private static TimeSpan Seconds(Option option, int seconds, bool allowZero) =>
        seconds > 0 || (allowZero && seconds == 0)
            ? TimeSpan.FromSeconds(seconds)
            : throw new UsageException($"{option.Name} must be {(allowZero ? "0 or more" : "at least 1")} seconds (got {seconds})");
}
