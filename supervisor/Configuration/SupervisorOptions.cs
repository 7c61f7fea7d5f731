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

    /// <summary>Null means a fresh private directory under $XDG_RUNTIME_DIR or the temp directory.</summary>
    public string? SocketDirectory { get; init; }

    public required LogLevelName LogLevel { get; init; }

    /// <summary>The folder the workers run in.</summary>
    public string WorkingDirectory => ChangeDirectory ?? App.Directory;
}
