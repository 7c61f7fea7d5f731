namespace Supervisor.Configuration;

/// <summary>The validated settings of one supervisor run. Built once at start by <see cref="Cli.CommandLine"/>.</summary>
internal sealed record SupervisorOptions
{
    public required AppTarget App { get; init; }

    public required int Workers { get; init; }

    public required IReadOnlyList<BindAddress> Binds { get; init; }

    /// <summary>The workers' working directory; null means the app's own folder (its content root).</summary>
    public string? ChangeDirectory { get; init; }

    public required IReadOnlyDictionary<string, string> WorkerEnvironment { get; init; }

    public required TimeSpan GracefulTimeout { get; init; }

    public required TimeSpan BootTimeout { get; init; }

    /// <summary>Heartbeat silence after which a worker is killed; zero turns the check off.</summary>
    public required TimeSpan Timeout { get; init; }

    /// <summary>No response activity from a worker for this long gives the client 504; zero means no limit.</summary>
    public required TimeSpan RequestTimeout { get; init; }

    /// <summary>Recycle a worker after this many requests (plus up to <see cref="MaxRequestsJitter"/>); zero turns it off.</summary>
    public required int MaxRequests { get; init; }

    public required int MaxRequestsJitter { get; init; }

    /// <summary>Recycle a worker whose resident memory stays above this; zero turns it off.</summary>
    public required long MaxMemoryBytes { get; init; }

    /// <summary>Null means a fresh private directory under $XDG_RUNTIME_DIR or the temp directory.</summary>
    public string? SocketDirectory { get; init; }

    public required LogLevelName LogLevel { get; init; }

    /// <summary>The shared DataProtection key ring; null means the documented default.</summary>
    public string? DataProtectionDirectory { get; init; }

    /// <summary>The protocol between the proxy and the workers' Unix sockets.</summary>
    public WorkerProtocolVersion WorkerProtocol { get; init; } = WorkerProtocolVersion.Http2;

    /// <summary>Keep each client on one worker (YARP cookie affinity) while that worker lives.</summary>
    public bool StickySessions { get; init; }

    /// <summary>The folder the workers run in.</summary>
    public string WorkingDirectory => ChangeDirectory ?? App.Directory;
}

/// <summary>How the proxy talks to the workers.</summary>
internal enum WorkerProtocolVersion
{
    /// <summary>HTTP/1.1: one request per connection at a time.</summary>
    Http1,

    /// <summary>HTTP/2 cleartext with prior knowledge: many requests on one connection, fewer system calls.</summary>
    Http2,
}
