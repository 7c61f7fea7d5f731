using System.Buffers;
using System.Collections.Concurrent;
using System.Net;

namespace Supervisor.Proxy.Http2;

/// <summary>
/// YARP's client to the workers. Requests without a body, which are most of them, go over this
/// client's own HTTP/2 connections (<see cref="WorkerConnection"/>): measured, it costs the front about
/// a third less CPU per request than <c>HttpClient</c>'s HTTP/2 (bench/README.md). Everything else —
/// request bodies, WebSockets, HTTP/1.1 to the workers — goes to <c>SocketsHttpHandler</c>, unchanged.
/// </summary>
internal sealed class WorkerHttp2Handler(HttpMessageHandler fallback, Func<string, string> socketPathOf) : DelegatingHandler(fallback)
{
    private readonly ConcurrentDictionary<string, WorkerConnectionPool> _pools = new(StringComparer.Ordinal);
    private readonly Func<string, string> _socketPathOf = socketPathOf;

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
        IsPlainHttp2Request(request) ? SendOverOwnConnectionAsync(request, cancellationToken) : base.SendAsync(request, cancellationToken);

    // HTTP/2 asked for outright (h2c), no body, and not a CONNECT (WebSockets over HTTP/2).
    private static bool IsPlainHttp2Request(HttpRequestMessage request) =>
        request.Content is null
        && request.Version == HttpVersion.Version20
        && request.VersionPolicy == HttpVersionPolicy.RequestVersionExact
        && request.Method != HttpMethod.Connect
        && request.RequestUri is { IsAbsoluteUri: true };

    private async Task<HttpResponseMessage> SendOverOwnConnectionAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var worker = request.RequestUri!.Host;
        var pool = _pools.GetOrAdd(worker, static (key, handler) => new WorkerConnectionPool(key, handler._socketPathOf(key), handler.Forget), this);
        var stream = new WorkerStream(request);
        var (headerBlock, length) = RequestHeaderEncoder.Encode(request);
        try
        {
            await pool.StartAsync(stream, headerBlock.AsMemory(0, length), cancellationToken);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(headerBlock);
        }
        using (cancellationToken.UnsafeRegister(static (state, token) => ((WorkerStream)state!).Cancel(token), stream))
        {
            return await stream.Response;
        }
    }

    // A recycled worker's pool empties when its connections close; forgetting it keeps the map to the living.
    private void Forget(WorkerConnectionPool pool) => _pools.TryRemove(KeyValuePair.Create(pool.Worker, pool));
}
