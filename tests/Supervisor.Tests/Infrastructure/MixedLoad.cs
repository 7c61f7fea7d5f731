using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Cryptography;

namespace Supervisor.Tests.Infrastructure;

/// <summary>What users send, as the lifecycle tests mix it.</summary>
internal enum WorkKind
{
    /// <summary>GET / answered at once.</summary>
    Instant,

    /// <summary>A GET the app takes 1 to 3 s to answer: in flight when a worker is told to go.</summary>
    Slow,

    /// <summary>A 2 MB POST whose length and SHA-256 the app sends back.</summary>
    Upload,

    /// <summary>A 4 MB download, every byte checked.</summary>
    Download,

    /// <summary>A WebSocket session of 10 echoed messages, 100 ms apart, closed normally.</summary>
    WebSocket,

    /// <summary>A server-sent-events stream of 10 events, 100 ms apart.</summary>
    Sse,
}

/// <summary>
/// One unit of work as it ended: when it started and ended (<see cref="Stopwatch"/> timestamps), the worker
/// that answered when its head said so, why it did not complete intact (null: it did), and whether its
/// connection was lost (rather than a wrong answer arriving on it).
/// </summary>
internal sealed record WorkOutcome(WorkKind Kind, long StartedAt, long EndedAt, int? WorkerPid, string? Failure, bool ConnectionLost)
{
    public bool Failed => Failure is not null;

    public bool InFlightAt(long timestamp) => StartedAt <= timestamp && timestamp <= EndedAt;

    // The wall-clock start, to set a failure beside the supervisor's log lines.
    public override string ToString() =>
        $"{Kind} (from {DateTime.UtcNow - Stopwatch.GetElapsedTime(StartedAt):HH:mm:ss.fff} UTC, {Stopwatch.GetElapsedTime(StartedAt, EndedAt).TotalMilliseconds:F0} ms, worker {WorkerPid?.ToString(CultureInfo.InvariantCulture) ?? "unknown"})"
        + (Failure is null ? "" : ": " + Failure);
}

/// <summary>
/// A keep-alive load that mixes what users send — instant GETs, slow requests, uploads, downloads,
/// WebSocket sessions and SSE streams — each checked end to end (status, and the body's length and
/// content), bounded in time, for the lifecycle tests: a recycle or reload must not cost one of them.
/// <para>
/// No silent retries: each HTTP lane is one client on one connection, and every connection is counted.
/// SocketsHttpHandler resends a request only on a new connection, so when the lanes opened exactly one
/// connection each, no request was sent twice (and the front kept every client connection).
/// </para>
/// </summary>
internal sealed class MixedLoad : IAsyncDisposable
{
    private const int UploadBytes = 2 * 1_048_576;
    private const int DownloadMegabytes = 4;
    private const int Messages = 10;
    private static readonly TimeSpan UnitTimeout = TimeSpan.FromSeconds(30);

    // Lanes per kind: ten units in flight at any moment, most of them instant.
    private static readonly (WorkKind Kind, int Lanes)[] Shape =
    [
        (WorkKind.Instant, 4), (WorkKind.Slow, 2), (WorkKind.Upload, 1), (WorkKind.Download, 1), (WorkKind.WebSocket, 1), (WorkKind.Sse, 1),
    ];

    private readonly Uri _baseAddress;
    private readonly CancellationTokenSource _stop;
    private readonly ConcurrentQueue<WorkOutcome> _outcomes = new();
    private readonly List<HttpClient> _clients = [];
    private readonly Task[] _lanes;
    private long _connectionsOpened;
    private long _closedByServer;

    private MixedLoad(Uri baseAddress, TimeSpan maxDuration)
    {
        _baseAddress = baseAddress;
        _stop = new CancellationTokenSource(maxDuration);
        var lanes = new List<Task>();
        foreach (var (kind, count) in Shape)
        {
            for (var i = 0; i < count; i++)
            {
                var client = kind == WorkKind.WebSocket ? null : CreateClient();
                lanes.Add(Task.Run(() => RunLaneAsync(kind, client)));
            }
        }
        _lanes = [.. lanes];
    }

    /// <summary>HTTP lanes: each one client with one connection, as long as nothing fails.</summary>
    public int HttpLanes => _clients.Count;

    /// <summary>Connections the HTTP lanes opened to the front (WebSocket sessions open their own and are not counted).</summary>
    public long ConnectionsOpened => Interlocked.Read(ref _connectionsOpened);

    /// <summary>
    /// Responses that said Connection: close: the server ended their connection after them, and the lane's
    /// next request opens a new one. A worker draining in kernel mode does this; nothing was resent.
    /// </summary>
    public long ConnectionsClosedByServer => Interlocked.Read(ref _closedByServer);

    public IReadOnlyList<WorkOutcome> Outcomes => [.. _outcomes];

    public IReadOnlyList<WorkOutcome> Failures => [.. _outcomes.Where(outcome => outcome.Failed)];

    /// <summary>
    /// What the death of one worker dooms: the units whose head shows it answered them, and uploads started
    /// before the supervisor knew of the death (<paramref name="knownAt"/>) that got no head: a request with
    /// a body is never sent twice, since the worker may have acted on it. A GET it never answered is resent.
    /// </summary>
    public static Func<WorkOutcome, bool> DoomedByDeathOf(int pid, long knownAt) =>
        outcome => outcome.WorkerPid == pid || (outcome.WorkerPid is null && outcome.Kind == WorkKind.Upload && outcome.StartedAt <= knownAt);

    /// <summary>
    /// What the death of one worker dooms with --balancer kernel, where the clients' connections are the
    /// worker's own and no proxy can send anything again: every unit in flight on them. The test cannot
    /// tell which connections were the dead worker's, so every unit without a head in flight then counts.
    /// </summary>
    public static Func<WorkOutcome, bool> DoomedByDeathOfKernelWorker(int pid, long knownAt) =>
        outcome => outcome.WorkerPid == pid || (outcome.WorkerPid is null && outcome.StartedAt <= knownAt);

    public static MixedLoad Start(Uri baseAddress, TimeSpan? maxDuration = null) => new(baseAddress, maxDuration ?? TimeSpan.FromSeconds(120));

    public int CompletedIntact(WorkKind kind) => _outcomes.Count(outcome => outcome.Kind == kind && !outcome.Failed);

    /// <summary>Waits until every kind has completed <paramref name="count"/> more units intact: proof that all of the mix flows now.</summary>
    public async Task WaitForEveryKindAsync(int count, TimeSpan timeout)
    {
        var targets = Shape.ToDictionary(lane => lane.Kind, lane => CompletedIntact(lane.Kind) + count);
        await Eventually.TrueAsync(() => targets.All(target => CompletedIntact(target.Key) >= target.Value), timeout,
            $"{count} more of each kind completed intact (so far: {Summary()})");
    }

    /// <summary>Stops starting work and returns when every unit in flight has ended and been counted.</summary>
    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_lanes);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        foreach (var client in _clients)
        {
            client.Dispose();
        }
        _stop.Dispose();
    }

    public string Summary()
    {
        var perKind = Shape.Select(lane => $"{lane.Kind} {CompletedIntact(lane.Kind)}/{_outcomes.Count(o => o.Kind == lane.Kind && o.Failed)}");
        var failures = Failures;
        return $"intact/failed: {string.Join(", ", perKind)}; {ConnectionsOpened} connections for {HttpLanes} HTTP lanes, {ConnectionsClosedByServer} closed by the server"
            + (failures.Count > 0 ? "; failures: " + string.Join("; ", failures.Take(8)) : "");
    }

    /// <summary>Every unit completed intact, and no request can have been resent by the client.</summary>
    public void AssertAllIntact() => AssertIntactExcept(_ => false);

    /// <summary>
    /// Every unit completed intact but those the scenario dooms, and no request can have been resent by the
    /// client: each connection a lane opened after its first replaced one that a failure lost.
    /// </summary>
    /// <param name="resendsAllowed">Requests the client may send again on a new connection, unseen: where a
    /// worker dies in kernel mode, its idle keep-alive connections are reset under their next request.</param>
    public void AssertIntactExcept(Func<WorkOutcome, bool> doomed, int resendsAllowed = 0)
    {
        var failures = Failures;
        var undoomed = failures.Where(failure => !doomed(failure)).ToList();
        Assert.True(undoomed.Count == 0, $"{undoomed.Count} failed that nothing doomed: {string.Join("; ", undoomed.Take(8))}. {Summary()}");
        var lostConnections = failures.Count(failure => failure.ConnectionLost && failure.Kind != WorkKind.WebSocket);
        Assert.True(ConnectionsOpened <= HttpLanes + lostConnections + ConnectionsClosedByServer + resendsAllowed,
            $"{ConnectionsOpened} connections for {HttpLanes} HTTP lanes, {lostConnections} lost and {ConnectionsClosedByServer} closed by the server: a request may have been resent silently. {Summary()}");
    }

    private HttpClient CreateClient()
    {
        var handler = new SocketsHttpHandler
        {
            MaxConnectionsPerServer = 1,
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
            ConnectCallback = async (context, cancellationToken) =>
            {
                Interlocked.Increment(ref _connectionsOpened);
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        var client = new HttpClient(handler) { BaseAddress = _baseAddress, Timeout = UnitTimeout };
        client.DefaultRequestHeaders.Add("X-Which-Worker", "1");
        lock (_clients)
        {
            _clients.Add(client);
        }
        return client;
    }

    private async Task RunLaneAsync(WorkKind kind, HttpClient? client)
    {
        var upload = kind == WorkKind.Upload ? RandomNumberGenerator.GetBytes(UploadBytes) : [];
        var uploadAnswer = $"{UploadBytes} {Convert.ToHexString(SHA256.HashData(upload))}";
        while (!_stop.IsCancellationRequested)
        {
            var started = Stopwatch.GetTimestamp();
            var unit = new Unit(this);
            try
            {
                // Not cancelled by the stop: a unit that began is seen through to its end, and counted.
                switch (kind)
                {
                    case WorkKind.Instant:
                        await GetTextAsync(client!, "/", unit, text => text == "ok");
                        break;
                    case WorkKind.Slow:
                        var ms = Random.Shared.Next(1000, 3001);
                        await GetTextAsync(client!, $"/slow?ms={ms}", unit, text => text.StartsWith($"slept {ms} ms in ", StringComparison.Ordinal));
                        break;
                    case WorkKind.Upload:
                        await UploadAsync(client!, upload, uploadAnswer, unit);
                        break;
                    case WorkKind.Download:
                        await DownloadAsync(client!, unit);
                        break;
                    case WorkKind.WebSocket:
                        await WebSocketSessionAsync(unit);
                        break;
                    case WorkKind.Sse:
                        var expected = string.Concat(Enumerable.Range(0, Messages).Select(i => $"data: event {i}\n\n"));
                        await GetTextAsync(client!, $"/sse?events={Messages}&ms=100", unit, text => text == expected);
                        break;
                }
            }
            catch (BrokenUnitException exception)
            {
                unit.Failure = exception.Message;
            }
            catch (Exception exception) when (exception is HttpRequestException or TaskCanceledException or IOException or WebSocketException)
            {
                unit.Failure = Describe(exception);
                unit.ConnectionLost = true;
            }
            _outcomes.Enqueue(new WorkOutcome(kind, started, Stopwatch.GetTimestamp(), unit.WorkerPid, unit.Failure, unit.ConnectionLost));
        }
    }

    // The exception and what caused it, which names how the connection was lost (reset, closed, timed out).
    private static string Describe(Exception exception)
    {
        var causes = new List<string>();
        for (Exception? cause = exception; cause is not null; cause = cause.InnerException)
        {
            causes.Add($"{cause.GetType().Name}: {cause.Message}");
        }
        return string.Join(" <- ", causes);
    }

    private static async Task GetTextAsync(HttpClient client, string path, Unit unit, Func<string, bool> isIntact)
    {
        using var response = await client.GetAsync(path, HttpCompletionOption.ResponseHeadersRead, CancellationToken.None);
        unit.ReadWorker(response);
        var text = await response.Content.ReadAsStringAsync(CancellationToken.None);
        Unit.Check(response.StatusCode == HttpStatusCode.OK && isIntact(text), $"{(int)response.StatusCode} {Shorten(text)}");
    }

    private static async Task UploadAsync(HttpClient client, byte[] body, string answer, Unit unit)
    {
        using var response = await client.PostAsync("/upload", new ByteArrayContent(body), CancellationToken.None);
        unit.ReadWorker(response);
        var text = await response.Content.ReadAsStringAsync(CancellationToken.None);
        Unit.Check(response.StatusCode == HttpStatusCode.OK && text == answer, $"{(int)response.StatusCode} {Shorten(text)}");
    }

    private static async Task DownloadAsync(HttpClient client, Unit unit)
    {
        using var response = await client.GetAsync($"/download?mb={DownloadMegabytes}", HttpCompletionOption.ResponseHeadersRead, CancellationToken.None);
        unit.ReadWorker(response);
        Unit.Check(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode}");
        await using var body = await response.Content.ReadAsStreamAsync(CancellationToken.None);
        var buffer = new byte[64 * 1024];
        long offset = 0;
        int read;
        while ((read = await body.ReadAsync(buffer, CancellationToken.None)) > 0)
        {
            for (var i = 0; i < read; i++)
            {
                // Byte i of a download is i % 251.
                if (buffer[i] != (byte)((offset + i) % 251))
                {
                    throw new BrokenUnitException($"byte {offset + i} is {buffer[i]}");
                }
            }
            offset += read;
        }
        Unit.Check(offset == DownloadMegabytes * 1_048_576L, $"{offset} bytes of {DownloadMegabytes} MB");
    }

    private async Task WebSocketSessionAsync(Unit unit)
    {
        using var socket = new ClientWebSocket();
        socket.Options.SetRequestHeader("X-Which-Worker", "1");
        socket.Options.CollectHttpResponseDetails = true;
        using var timeout = new CancellationTokenSource(UnitTimeout);
        var uri = new UriBuilder(_baseAddress) { Scheme = "ws", Path = "/ws" }.Uri;
        await socket.ConnectAsync(uri, timeout.Token);
        if (socket.HttpResponseHeaders?.TryGetValue("X-Worker-Pid", out var pids) == true)
        {
            unit.WorkerPid = int.Parse(pids.First(), CultureInfo.InvariantCulture);
        }
        var received = new byte[2048];
        for (var i = 0; i < Messages; i++)
        {
            var message = RandomNumberGenerator.GetBytes(1024);
            await socket.SendAsync(message, WebSocketMessageType.Binary, endOfMessage: true, timeout.Token);
            var length = 0;
            ValueWebSocketReceiveResult result;
            do
            {
                result = await socket.ReceiveAsync(received.AsMemory(length), timeout.Token);
                length += result.Count;
            }
            while (!result.EndOfMessage && result.MessageType != WebSocketMessageType.Close);
            Unit.Check(result.MessageType == WebSocketMessageType.Binary && received.AsSpan(0, length).SequenceEqual(message),
                $"message {i} came back as {result.MessageType} of {length} bytes");
            await Task.Delay(100, CancellationToken.None);
        }
        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", timeout.Token);
        Unit.Check(socket.CloseStatus == WebSocketCloseStatus.NormalClosure, $"closed with {socket.CloseStatus} {socket.CloseStatusDescription}");
    }

    private static string Shorten(string text) => text.Length <= 120 ? text : text[..120] + "…";

    /// <summary>What one unit learnt on its way: the worker that answered, and its failure.</summary>
    private sealed class Unit(MixedLoad load)
    {
        public int? WorkerPid { get; set; }

        public string? Failure { get; set; }

        public bool ConnectionLost { get; set; }

        public static void Check(bool intact, string otherwise)
        {
            if (!intact)
            {
                throw new BrokenUnitException(otherwise);
            }
        }

        public void ReadWorker(HttpResponseMessage response)
        {
            if (response.Headers.ConnectionClose == true)
            {
                Interlocked.Increment(ref load._closedByServer);
            }
            if (response.Headers.TryGetValues("X-Worker-Pid", out var pids))
            {
                WorkerPid = int.Parse(pids.First(), CultureInfo.InvariantCulture);
            }
        }
    }

    /// <summary>A response that arrived but is not what the app sent.</summary>
    private sealed class BrokenUnitException(string message) : Exception(message);
}
