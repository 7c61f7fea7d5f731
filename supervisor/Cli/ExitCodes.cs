namespace Supervisor.Cli;

/// <summary>The supervisor's exit codes: a contract with systemd, containers and scripts.</summary>
internal static class ExitCodes
{
    /// <summary>A clean stop (SIGTERM, SIGINT, SIGQUIT), or --help / --version.</summary>
    public const int Success = 0;

    /// <summary>A failure at run time: the public address could not be bound, or the supervisor itself failed.</summary>
    public const int RuntimeFailure = 1;

    /// <summary>Bad command line or configuration: nothing was started.</summary>
    public const int UsageError = 2;

    /// <summary>The workers could not boot: they exited before they were ready, or were not ready in time.</summary>
    public const int WorkerBootFailure = 3;
}
