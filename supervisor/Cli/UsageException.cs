namespace Supervisor.Cli;

/// <summary>
/// Bad input the user can fix: the message is one line that names the problem and the fix,
/// and the supervisor exits with <see cref="ExitCodes.UsageError"/> before starting anything.
/// </summary>
internal sealed class UsageException(string message) : Exception(message);
