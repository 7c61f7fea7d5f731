namespace Supervisor.Cli;

/// <summary>A failure while starting that is not the user's input (the address is taken, for example).</summary>
internal sealed class StartupFailureException(string message, int exitCode, Exception? innerException = null)
    : Exception(message, innerException)
{
    public int ExitCode { get; } = exitCode;
}
