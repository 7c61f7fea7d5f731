namespace Supervisor.Arbitration;

/// <summary>
/// How long a slot waits before it starts a worker again after failures in a row: at once after a
/// single crash, then 1 s, 2 s, 4 s, ... up to <see cref="Cap"/>, so a broken app never spins in a tight loop.
/// </summary>
internal static class RespawnBackoff
{
    public static readonly TimeSpan Cap = TimeSpan.FromSeconds(30);

    /// <summary>A worker that served this long before it died is counted as a fresh failure, not a repeat.</summary>
    public static readonly TimeSpan StableUptime = TimeSpan.FromSeconds(10);

    public static TimeSpan Delay(int consecutiveFailures)
    {
        if (consecutiveFailures <= 1)
        {
            return TimeSpan.Zero;
        }
        var exponent = Math.Min(consecutiveFailures - 2, 10);
        var delay = TimeSpan.FromSeconds(1 << exponent);
        return delay < Cap ? delay : Cap;
    }
}
