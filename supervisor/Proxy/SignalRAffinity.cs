using System.Collections.Concurrent;
using System.Text.Json;

namespace Supervisor.Proxy;

/// <summary>
/// Keeps each SignalR connection on the worker that negotiated it, with no option to set. A SignalR client
/// first POSTs <c>HUB/negotiate</c>; the worker answers with a connection token only it knows, and every
/// transport request after that (the WebSocket, the server-sent-events stream, each long poll and send,
/// the closing DELETE) names the token in <c>?id=</c>. Any other worker answers 404 "No Connection with
/// that ID", which is how Blazor Server lost 3 page loads in 6 on 4 workers.
/// </summary>
/// <remarks>
/// The front learns the token from the negotiate response as it passes, before the response's last octet
/// reaches the client (<see cref="MaxNegotiateResponse"/> bounds what is held back), so the client cannot
/// ask for its connection before the front knows where it lives. A request naming a known token goes to
/// that worker while it is in rotation; once the worker is gone it goes anywhere, gets the app's 404, and
/// the client's reconnect negotiates afresh. Requests that name no known token are untouched: nothing else
/// becomes sticky. Tokens not used for <see cref="IdleLifetime"/> are forgotten, and at most
/// <see cref="Capacity"/> are held.
/// </remarks>
internal sealed class SignalRAffinity(TimeProvider time)
{
    /// <summary>A negotiate response is a few hundred octets; a larger one is passed on unread.</summary>
    public const int MaxNegotiateResponse = 16 * 1024;

    // One WebSocket or SSE connection uses its token once, at its start; long polling uses it every poll
    // (90 s at most, SignalR's default poll timeout). Ten minutes covers a stateful reconnect's retries.
    internal static readonly TimeSpan IdleLifetime = TimeSpan.FromMinutes(10);
    internal const int Capacity = 100_000;
    private static readonly TimeSpan SweepInterval = TimeSpan.FromMinutes(1);

    private readonly ConcurrentDictionary<string, Entry> _workers = new(StringComparer.Ordinal);
    private long _lastSweepTicks = time.GetTimestamp();

    public int Count => _workers.Count;

    /// <summary>A SignalR negotiate request (POST to a path ending in /negotiate), whose response is worth reading.</summary>
    public static bool IsNegotiate(HttpRequest request) =>
        HttpMethods.IsPost(request.Method) && request.Path.Value?.EndsWith("/negotiate", StringComparison.Ordinal) == true;

    /// <summary>The worker that issued the token this request names in <c>?id=</c>, if the front knows it.</summary>
    public string? WorkerFor(HttpRequest request)
    {
        // Every request of a SignalR app passes here: the raw query is looked at before it is parsed.
        if (_workers.IsEmpty
            || request.QueryString.Value?.Contains("id=", StringComparison.Ordinal) != true
            || !request.Query.TryGetValue("id", out var ids) || ids is not [{ Length: > 0 } token])
        {
            return null;
        }
        if (!_workers.TryGetValue(token, out var entry))
        {
            return null;
        }
        entry.LastUsedTicks = time.GetTimestamp();
        return entry.Worker;
    }

    /// <summary>Records the token of a negotiate response <paramref name="worker"/> gave; anything that is not one is ignored.</summary>
    public void Learn(ReadOnlyMemory<byte> response, string worker)
    {
        if (ReadToken(response) is not { } token)
        {
            return;
        }
        var now = time.GetTimestamp();
        if (_workers.Count >= Capacity || time.GetElapsedTime(Interlocked.Read(ref _lastSweepTicks), now) >= SweepInterval)
        {
            Sweep(now);
        }
        if (_workers.Count < Capacity)
        {
            _workers[token] = new Entry(worker, now);
        }
    }

    // Negotiate version 1 and later: transports name the connectionToken; version 0 had only connectionId.
    // A redirect ({"url": ...}) or an error ({"error": ...}) names no connection.
    private static string? ReadToken(ReadOnlyMemory<byte> response)
    {
        try
        {
            using var document = JsonDocument.Parse(response);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return null;
            }
            foreach (var name in (ReadOnlySpan<string>)["connectionToken", "connectionId"])
            {
                if (root.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String && value.GetString() is { Length: > 0 } token)
                {
                    return token;
                }
            }
            return null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private void Sweep(long now)
    {
        Interlocked.Exchange(ref _lastSweepTicks, now);
        foreach (var (token, entry) in _workers)
        {
            if (time.GetElapsedTime(entry.LastUsedTicks, now) >= IdleLifetime)
            {
                _workers.TryRemove(token, out _);
            }
        }
    }

    private sealed class Entry(string worker, long lastUsedTicks)
    {
        public string Worker { get; } = worker;

        // Written by any request naming the token; a stale read only delays its forgetting.
        public long LastUsedTicks { get; set; } = lastUsedTicks;
    }
}
