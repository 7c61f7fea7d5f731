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
        await PollAsync(() => Task.FromResult(condition()), timeout, () => what);
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
        T value = default!;
        await PollAsync(async () => done(value = await read()), timeout, () => $"{what} (last value: {value})");
        return value;
    }

    private static async Task PollAsync(Func<Task<bool>> attempt, TimeSpan timeout, Func<string> describe)
    {
        var started = TimeProvider.System.GetTimestamp();
        while (!await attempt())
        {
            if (TimeProvider.System.GetElapsedTime(started) > timeout)
            {
                throw new TimeoutException($"Not true within {timeout.TotalSeconds} s: {describe()}");
            }
            await Task.Delay(PollInterval);
        }
    }
}
