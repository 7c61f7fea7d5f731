using Supervisor.Cli;

namespace Supervisor.Arbitration;

/// <summary>Why the arbiter's loop ended, and so how the supervisor stops.</summary>
internal sealed record StopReason(StopMode Mode, int ExitCode, string Description)
{
    public static StopReason Graceful(string signal) => new(StopMode.Graceful, ExitCodes.Success, $"Handling signal: {signal}");

    public static StopReason Quick(string signal) => new(StopMode.Quick, ExitCodes.Success, $"Handling signal: {signal}");

    public static StopReason BootFailure(string reason) => new(StopMode.Quick, ExitCodes.WorkerBootFailure, reason);

    /// <summary>A binary upgrade's new supervisor serves: this one drains as on SIGTERM.</summary>
    public static StopReason Upgraded(int pid) => new(StopMode.Graceful, ExitCodes.Success, $"Upgraded: supervisor {pid} serves; this one drains and exits") { HandedOver = true };

    /// <summary>The listening sockets are another supervisor's now: nothing of them is this one's to close or announce.</summary>
    public bool HandedOver { get; init; }
}

internal enum StopMode
{
    /// <summary>SIGTERM: stop accepting, let in-flight requests finish, stop workers gracefully.</summary>
    Graceful,

    /// <summary>SIGINT, SIGQUIT, or a failure: cut connections, stop workers at once.</summary>
    Quick,
}
