using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;

namespace Supervisor.Tests.Infrastructure;

/// <summary>
/// A keep-alive load over loopback, bounded in time and in requests, that counts every request that did
/// not end in 200 (a status, a reset connection, a timeout): the figure the reliability tests hold to zero.
/// Each failure keeps when its request started, and each success how long it took.
/// </summary>
internal sealed class LoadGenerator : IAsyncDisposable
{
    private readonly HttpClient _client;
    private readonly CancellationTokenSource _stop;
    private readonly Task[] _loops;
    private readonly ConcurrentQueue<(long StartedAt, string What)> _failures = new();
    private readonly ConcurrentDictionary<string, int> _bodies = new();
    private readonly ConcurrentQueue<double> _latenciesMs = new();
    private readonly byte[]? _body;
    private long _succeeded;
    private long _sent;

    private LoadGenerator(Uri baseAddress, string path, int connections, TimeSpan maxDuration, long maxRequests, int bodyBytes)
    {
        var handler = new SocketsHttpHandler { MaxConnectionsPerServer = connections, PooledConnectionLifetime = Timeout.InfiniteTimeSpan };
        _client = new HttpClient(handler) { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(30) };
        _stop = new CancellationTokenSource(maxDuration);
        _body = bodyBytes > 0 ? new byte[bodyBytes] : null;
        _loops = [.. Enumerable.Range(0, connections).Select(_ => Task.Run(() => LoopAsync(path, maxRequests)))];
    }

    public long Succeeded => Interlocked.Read(ref _succeeded);

    public int Failed => _failures.Count;

    public IReadOnlyCollection<string> Failures => [.. _failures.Select(failure => failure.What)];

    /// <summary>Failures of requests started at or after <paramref name="timestamp"/> (a <see cref="Stopwatch"/> timestamp), with how long after it each started.</summary>
    public IReadOnlyCollection<string> FailuresStartedSince(long timestamp) =>
        [.. _failures.Where(failure => failure.StartedAt >= timestamp).Select(failure => $"{Stopwatch.GetElapsedTime(timestamp, failure.StartedAt).TotalMilliseconds:F1} ms after: {failure.What}")];

    /// <summary>The given percentile of the successful requests' durations, in milliseconds.</summary>
    public double LatencyPercentileMs(double percentile)
    {
        var sorted = _latenciesMs.Order().ToArray();
        return sorted.Length == 0 ? 0 : sorted[Math.Min(sorted.Length - 1, (int)(sorted.Length * percentile / 100))];
    }

    /// <summary>How many responses carried each distinct body (when the body says which worker or version answered).</summary>
    public IReadOnlyDictionary<string, int> Bodies => _bodies;

    /// <param name="bodyBytes">More than 0: each request is a POST with a body of that many octets.</param>
    public static LoadGenerator Start(Uri baseAddress, string path = "/", int connections = 8, TimeSpan? maxDuration = null, long maxRequests = 1_000_000, int bodyBytes = 0) =>
        new(baseAddress, path, connections, maxDuration ?? TimeSpan.FromSeconds(90), maxRequests, bodyBytes);

    /// <summary>Waits until at least <paramref name="count"/> more requests have succeeded: proof that traffic flows now.</summary>
    public Task WaitForMoreSuccessesAsync(long count, TimeSpan timeout)
    {
        var target = Succeeded + count;
        return Eventually.TrueAsync(() => Succeeded >= target, timeout, $"{count} more successful requests");
    }

    /// <summary>Stops the load and returns when every request in flight has ended.</summary>
    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_loops);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _client.Dispose();
        _stop.Dispose();
    }

    public string Summary() =>
        $"{Succeeded} succeeded, {Failed} failed" + (Failed > 0 ? ": " + string.Join("; ", Failures.Take(5)) : "");

    private async Task LoopAsync(string path, long maxRequests)
    {
        while (!_stop.IsCancellationRequested && Interlocked.Increment(ref _sent) <= maxRequests)
        {
            var started = Stopwatch.GetTimestamp();
            try
            {
                // Not cancelled by _stop: a request that was sent is seen through to its end, and counted.
                using var response = _body is null
                    ? await _client.GetAsync(path, CancellationToken.None)
                    : await _client.PostAsync(path, new ByteArrayContent(_body), CancellationToken.None);
                var body = await response.Content.ReadAsStringAsync(CancellationToken.None);
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    Interlocked.Increment(ref _succeeded);
                    _bodies.AddOrUpdate(body, 1, (_, n) => n + 1);
                    _latenciesMs.Enqueue(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                }
                else
                {
                    _failures.Enqueue((started, $"{(int)response.StatusCode} {body}"));
                }
            }
            catch (Exception exception) when (exception is HttpRequestException or TaskCanceledException or IOException)
            {
                _failures.Enqueue((started, $"{exception.GetType().Name}: {exception.Message}"));
            }
        }
    }
}
