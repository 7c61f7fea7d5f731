namespace Supervisor.Tests.Infrastructure;

/// <summary>
/// Polls a condition that has no event to await (another process's death, for one), with a bound.
/// Returns how long it took, so a test can assert on the time too.
/// </summary>
internal static class Eventually
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(20);

    public static async Task<TimeSpan> TrueAsync(Func<bool> condition, TimeSpan timeout, string what)
    {
        var started = TimeProvider.System.GetTimestamp();
        while (!condition())
        {
            var elapsed = TimeProvider.System.GetElapsedTime(started);
            if (elapsed > timeout)
            {
                throw new TimeoutException($"Not true within {timeout.TotalSeconds} s: {what}");
            }
            await Task.Delay(PollInterval);
        }
        return TimeProvider.System.GetElapsedTime(started);
    }

    /// <summary>Reads a value until it satisfies <paramref name="done"/>, with a bound; returns the last value read.</summary>
    public static async Task<T> ValueAsync<T>(Func<T> read, Func<T, bool> done, TimeSpan timeout, string what)
    {
        var value = read();
        await TrueAsync(() => done(value = read()), timeout, what);
        return value;
    }

    /// <summary>Reads a value asynchronously until it satisfies <paramref name="done"/>, with a bound; returns the last value read.</summary>
    public static async Task<T> ValueAsync<T>(Func<Task<T>> read, Func<T, bool> done, TimeSpan timeout, string what)
    {
        var started = TimeProvider.System.GetTimestamp();
        while (true)
        {
            var value = await read();
            if (done(value))
            {
                return value;
            }
            if (TimeProvider.System.GetElapsedTime(started) > timeout)
            {
                throw new TimeoutException($"Not true within {timeout.TotalSeconds} s: {what} (last value: {value})");
            }
            await Task.Delay(PollInterval);
        }
    }
}
