using Supervisor.Logging;
using Supervisor.WorkerHost;

namespace Supervisor.Configuration;

/// <summary>
/// The validated settings of one supervisor run, made by <see cref="ConfigurationLoader"/> at start and
/// again on each reload. What each one means, and its default, is declared once in <see cref="Settings"/>.
/// </summary>
internal sealed record SupervisorOptions
{
    public required AppTarget App { get; init; }

    public required int Workers { get; init; }

    /// <summary>The workers' working directory; null means the app's own folder (its content root).</summary>
    public string? ChangeDirectory { get; init; }

    public IReadOnlyDictionary<string, string> WorkerEnvironment { get; init; } = new Dictionary<string, string>();

    public Balancer Balancer { get; init; } = Balancer.Proxy;

    public WorkerProtocolVersion WorkerProtocol { get; init; } = WorkerProtocolVersion.Http2;

    public bool StickySessions { get; init; }

    /// <summary>The shared DataProtection key ring; null means the documented default.</summary>
    public string? DataProtectionDirectory { get; init; }

    /// <summary>Null means a fresh private directory under $XDG_RUNTIME_DIR or the temp directory.</summary>
    public string? SocketDirectory { get; init; }

    /// <summary>Heartbeat silence after which a worker is killed; zero turns the check off.</summary>
    public TimeSpan Timeout { get; init; } = Settings.Timeout.Default;

    public TimeSpan GracefulTimeout { get; init; } = Settings.GracefulTimeout.Default;

    public TimeSpan BootTimeout { get; init; } = Settings.BootTimeout.Default;

    /// <summary>No response activity from a worker for this long gives the client 504; zero means no limit.</summary>
    public TimeSpan RequestTimeout { get; init; }

    /// <summary>Recycle a worker after this many requests (plus up to <see cref="MaxRequestsJitter"/>); zero turns it off.</summary>
    public int MaxRequests { get; init; }

    public int MaxRequestsJitter { get; init; }

    /// <summary>Recycle a worker whose resident memory stays above this; zero turns it off.</summary>
    public long MaxMemoryBytes { get; init; }

    public IReadOnlyList<BindAddress> Binds { get; init; } = Settings.Bind.Default;

    /// <summary>Where /livez and /readyz are served; null: nowhere.</summary>
    public BindAddress? AdminBind { get; init; }

    public int Backlog { get; init; } = Settings.Backlog.Default;

    public int WorkerConnections { get; init; } = Settings.WorkerConnections.Default;

    public int MaxQueue { get; init; } = Settings.MaxQueue.Default;

    public TimeSpan KeepAlive { get; init; } = Settings.KeepAlive.Default;

    public TimeSpan HeaderTimeout { get; init; } = Settings.HeaderTimeout.Default;

    /// <summary>A client that takes nothing of its response for this long is disconnected; zero means no limit.</summary>
    public TimeSpan SendTimeout { get; init; } = Settings.SendTimeout.Default;

    public int LimitRequestLine { get; init; } = Settings.LimitRequestLine.Default;

    public int LimitRequestFields { get; init; } = Settings.LimitRequestFields.Default;

    /// <summary>Zero: no limit per field, only the total.</summary>
    public int LimitRequestFieldSize { get; init; } = Settings.LimitRequestFieldSize.Default;

    /// <summary>Zero: the app's own body limit applies.</summary>
    public long LimitRequestBody { get; init; }

    public TrustedProxies ForwardedAllowIps { get; init; } = Settings.ForwardedAllowIps.Default;

    /// <summary>With <see cref="KeyFile"/>: serve HTTPS.</summary>
    public string? CertFile { get; init; }

    public string? KeyFile { get; init; }

    /// <summary>A path, or "-" for stderr.</summary>
    public string ErrorLogFile { get; init; } = "-";

    public LogLevelName LogLevel { get; init; } = LogLevelName.Info;

    public ErrorLogFormat LogFormat { get; init; }

    /// <summary>A path, "-" for stdout, or null for no access log.</summary>
    public string? AccessLogFile { get; init; }

    public AccessLogFormat AccessLogFormat { get; init; } = Settings.AccessLogFormatSetting.Default;

    /// <summary>The config file these options were read from, re-read on SIGHUP; null when there is none.</summary>
    public string? ConfigFile { get; init; }

    public string? Pidfile { get; init; }

    /// <summary>The folder the workers run in.</summary>
    public string WorkingDirectory => ChangeDirectory ?? App.Directory;

    public bool ServesHttps => CertFile is not null;
}

/// <summary>Who gives each client to a worker (--balancer).</summary>
internal enum Balancer
{
    /// <summary>The supervisor's front takes each request and forwards it to the least busy worker.</summary>
    Proxy,

    /// <summary>The workers accept client connections themselves, on the listening sockets the supervisor binds and they inherit.</summary>
    Kernel,

    /// <summary>The supervisor accepts each client connection and hands it to the worker with the fewest open ones, which serves it.</summary>
    Handoff,
}

internal static class BalancerNames
{
    /// <summary>Kernel and handoff modes: the workers' own Kestrel serves the client connections; no proxy sees the requests.</summary>
    public static bool WorkersServeClients(this Balancer balancer) => balancer != Balancer.Proxy;

    /// <summary>The name --balancer takes.</summary>
    public static string Name(this Balancer balancer) => balancer switch
    {
        Balancer.Kernel => "kernel",
        Balancer.Handoff => "handoff",
        _ => "proxy",
    };
}

/// <summary>How the proxy talks to the workers.</summary>
internal enum WorkerProtocolVersion
{
    /// <summary>HTTP/1.1: one request per connection at a time.</summary>
    Http1,

    /// <summary>HTTP/2 cleartext with prior knowledge: many requests on one connection, fewer system calls.</summary>
    Http2,
}
