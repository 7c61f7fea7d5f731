// Experiment, not product: a forwarder with its own HTTP/2 client, to measure what a client built for
// this one job could save against YARP + HttpClient. GET only, no request bodies, no trailers, no
// Huffman-coded response headers, no errors handled: enough for wrk against the sample app.
// Usage: h2-direct PORT WORKER_SOCKET... (see README.md beside this file). The controls:
// H2D_CLIENT=httpclient forwards the same way through HttpClient; H2D_CLIENT=yarp through YARP's
// IHttpForwarder and HttpClient, without the supervisor's pipeline around it. H2D_CLIENT=none answers
// itself without forwarding: the floor of a Kestrel front's cost per request.
using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;

var port = int.Parse(args[0]);
RequestDelegate forward;
if (Environment.GetEnvironmentVariable("H2D_CLIENT") == "none")
{
    // The floor: Kestrel answering the sample app's "Hello World!" itself, with nothing forwarded.
    forward = context => context.Response.WriteAsync("Hello World!");
}
else if (Environment.GetEnvironmentVariable("H2D_CLIENT") == "yarp")
{
    forward = new YarpForwarder(args[1..]).ForwardAsync;
}
else if (Environment.GetEnvironmentVariable("H2D_CLIENT") == "httpclient")
{
    // The control: the same lean forwarding, through HttpClient's HTTP/2 instead of the client below.
    forward = new HttpClientForwarder(args[1..]).ForwardAsync;
}
else
{
    var pool = new H2Pool();
    foreach (var path in args[1..])
    {
        pool.Workers.Add([await H2Connection.ConnectAsync(path), await H2Connection.ConnectAsync(path)]);
    }
    forward = pool.ForwardAsync;
}
var builder = WebApplication.CreateSlimBuilder();
builder.Logging.ClearProviders();
builder.Services.AddHttpForwarder();
builder.WebHost.ConfigureKestrel(k =>
{
    k.AddServerHeader = false;
    k.ListenLocalhost(port);
});
var app = builder.Build();
app.Run(forward);
app.Run();

sealed class H2Pool
{
    public List<H2Connection[]> Workers { get; } = [];

    public async Task ForwardAsync(HttpContext context)
    {
        var worker = Workers[0];
        foreach (var w in Workers)
        {
            if (w[0].Active + w[1].Active < worker[0].Active + worker[1].Active) worker = w;
        }
        var best = worker[0].Active < 90 ? worker[0] : worker[1];
        var response = await best.SendAsync(context.Request);
        context.Response.StatusCode = response.Status;
        foreach (var (name, value) in response.Headers)
        {
            if (name == "content-length") context.Response.ContentLength = long.Parse(value);
            else context.Response.Headers.Append(name, value);
        }
        if (response.Body.Length > 0)
        {
            await context.Response.Body.WriteAsync(response.Body);
        }
    }
}

// HttpClient's HTTP/2 to the workers' sockets: host "w0" is the first socket given, and so on.
static class WorkerClient
{
    public static HttpMessageInvoker Create(string[] sockets) => new(new SocketsHttpHandler
    {
        UseProxy = false,
        AllowAutoRedirect = false,
        UseCookies = false,
        EnableMultipleHttp2Connections = true,
        ConnectCallback = async (context, cancellationToken) =>
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(sockets[int.Parse(context.DnsEndPoint.Host[1..])]), cancellationToken);
            return new NetworkStream(socket, ownsSocket: true);
        },
    });
}

// The least busy worker, ties to a random one, as the supervisor's dispatcher chooses.
sealed class LeastBusy(int workers)
{
    private readonly int[] _active = new int[workers];

    public int Acquire()
    {
        var start = Random.Shared.Next(_active.Length);
        var worker = start;
        for (var i = 1; i < _active.Length; i++)
        {
            var candidate = (start + i) % _active.Length;
            if (_active[candidate] < _active[worker]) worker = candidate;
        }
        Interlocked.Increment(ref _active[worker]);
        return worker;
    }

    public void Release(int worker) => Interlocked.Decrement(ref _active[worker]);
}

sealed class HttpClientForwarder(string[] sockets) : IDisposable
{
    private readonly HttpMessageInvoker _client = WorkerClient.Create(sockets);
    private readonly LeastBusy _workers = new(sockets.Length);

    public void Dispose() => _client.Dispose();

    public async Task ForwardAsync(HttpContext context)
    {
        var worker = _workers.Acquire();
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, $"http://w{worker}{context.Request.Path}{context.Request.QueryString}")
            {
                Version = System.Net.HttpVersion.Version20,
                VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            };
            foreach (var header in context.Request.Headers)
            {
                if (header.Key is "Host" or "Connection" or "Keep-Alive" or "Transfer-Encoding" or "Upgrade") continue;
                request.Headers.TryAddWithoutValidation(header.Key, (IEnumerable<string>)header.Value!);
            }
            using var response = await _client.SendAsync(request, context.RequestAborted);
            context.Response.StatusCode = (int)response.StatusCode;
            foreach (var header in response.Headers.Concat(response.Content.Headers))
            {
                context.Response.Headers.Append(header.Key, header.Value.ToArray());
            }
            await response.Content.CopyToAsync(context.Response.Body);
        }
        finally
        {
            _workers.Release(worker);
        }
    }
}

sealed class YarpForwarder(string[] sockets) : IDisposable
{
    private readonly HttpMessageInvoker _client = WorkerClient.Create(sockets);
    private readonly LeastBusy _workers = new(sockets.Length);
    private readonly Yarp.ReverseProxy.Forwarder.ForwarderRequestConfig _config = new() { Version = System.Net.HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };

    public void Dispose() => _client.Dispose();

    public async Task ForwardAsync(HttpContext context)
    {
        var worker = _workers.Acquire();
        try
        {
            var forwarder = context.RequestServices.GetRequiredService<Yarp.ReverseProxy.Forwarder.IHttpForwarder>();
            await forwarder.SendAsync(context, $"http://w{worker}/", _client, _config, Yarp.ReverseProxy.Forwarder.HttpTransformer.Default);
        }
        finally
        {
            _workers.Release(worker);
        }
    }
}

sealed class H2Response
{
    public int Status;
    public List<(string, string)> Headers = [];
    public byte[] Body = [];
}

// Continuations run inline: the request resumes on the read loop's thread, without a thread-pool hop.
sealed class H2Stream() : TaskCompletionSource<H2Response>(TaskCreationOptions.None)
{
    public readonly H2Response Response = new();
    public MemoryStream? Body;
}

sealed class H2Connection
{
    private readonly Socket _socket;
    private readonly Lock _lock = new();
    private readonly Dictionary<int, H2Stream> _streams = [];
    private byte[] _pending = new byte[1 << 16];
    private byte[] _spare = new byte[1 << 16];
    private int _pendingLength;
    private bool _writing;
    private int _nextStreamId = 1;
    private long _unacknowledgedData;
    private readonly HpackDecoder _decoder = new();
    public int Active;

    private H2Connection(Socket socket) => _socket = socket;

    public static async Task<H2Connection> ConnectAsync(string path)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(path));
        var connection = new H2Connection(socket);
        var preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray();
        connection.Write(span =>
        {
            preface.CopyTo(span);
            var at = preface.Length;
            at += WriteFrameHeader(span[at..], 18, 4, 0, 0);
            at += WriteSetting(span[at..], 1, 4096); // the worker's HPACK encoder may index response headers
            at += WriteSetting(span[at..], 2, 0); // no push
            at += WriteSetting(span[at..], 4, 16 << 20);
            at += WriteFrameHeader(span[at..], 4, 8, 0, 0);
            BinaryPrimitives.WriteInt32BigEndian(span[at..], 1 << 30);
            return at + 4;
        });
        _ = Task.Run(connection.ReadLoopAsync);
        return connection;
    }

    private static int WriteSetting(Span<byte> span, ushort id, int value)
    {
        BinaryPrimitives.WriteUInt16BigEndian(span, id);
        BinaryPrimitives.WriteInt32BigEndian(span[2..], value);
        return 6;
    }

    private static int WriteFrameHeader(Span<byte> span, int length, byte type, byte flags, int stream)
    {
        span[0] = (byte)(length >> 16);
        span[1] = (byte)(length >> 8);
        span[2] = (byte)length;
        span[3] = type;
        span[4] = flags;
        BinaryPrimitives.WriteInt32BigEndian(span[5..], stream);
        return 9;
    }

    private delegate int Encoder(Span<byte> span);

    // Appends under the lock; whoever finds no writer active becomes the writer and sends until nothing is pending.
    private void Write(Encoder encode)
    {
        lock (_lock)
        {
            if (_pending.Length - _pendingLength < 8192) Array.Resize(ref _pending, _pending.Length * 2);
            _pendingLength += encode(_pending.AsSpan(_pendingLength));
            if (_writing) return;
            _writing = true;
        }
        // Flushing from this thread sends one request per write, and the worker then wakes its thread
        // pool for each: measured, its CPU per request doubled. Deferring the flush until the pool has no
        // other work lets the requests arriving meanwhile go out in the same write.
        _requeues = 0;
        ThreadPool.UnsafeQueueUserWorkItem(static c => c.FlushWhenIdle(), this, preferLocal: false);
    }

    private int _requeues;

    private void FlushWhenIdle()
    {
        if (ThreadPool.PendingWorkItemCount > 0 && ++_requeues < 8)
        {
            ThreadPool.UnsafeQueueUserWorkItem(static c => c.FlushWhenIdle(), this, preferLocal: false);
            return;
        }
        Flush();
    }

    private void Flush()
    {
        while (true)
        {
            byte[] buffer;
            int length;
            lock (_lock)
            {
                if (_pendingLength == 0)
                {
                    _writing = false;
                    return;
                }
                buffer = _pending;
                length = _pendingLength;
                _pending = _spare;
                _pendingLength = 0;
            }
            var sent = 0;
            while (sent < length) sent += _socket.Send(buffer, sent, length - sent, SocketFlags.None);
            lock (_lock)
            {
                _spare = buffer;
            }
        }
    }

    public Task<H2Response> SendAsync(HttpRequest request)
    {
        var stream = new H2Stream();
        Interlocked.Increment(ref Active);
        Write(span =>
        {
            var id = _nextStreamId;
            _nextStreamId += 2;
            _streams[id] = stream;
            var block = span[9..];
            var at = 0;
            block[at++] = request.Method == "GET" ? (byte)0x82 : throw new NotSupportedException();
            block[at++] = 0x86; // :scheme http
            at += Literal(block[at..], 4, request.Path.Value + request.QueryString.Value);
            at += Literal(block[at..], 1, request.Host.Value ?? "localhost");
            foreach (var header in request.Headers)
            {
                if (header.Key is "Host" or "Connection" or "Keep-Alive" or "Transfer-Encoding" or "Upgrade") continue;
                foreach (var value in header.Value)
                {
                    block[at++] = 0;
                    at += String(block[at..], header.Key.ToLowerInvariant());
                    at += String(block[at..], value ?? "");
                }
            }
            WriteFrameHeader(span, at, 1, 5, id);
            return 9 + at;
        });
        return stream.Task;
    }

    private static int Literal(Span<byte> span, int nameIndex, string value)
    {
        span[0] = (byte)nameIndex; // literal without indexing, indexed name (4-bit prefix)
        return 1 + String(span[1..], value);
    }

    private static int String(Span<byte> span, string value)
    {
        var at = Integer(span, 7, 0, value.Length);
        return at + Encoding.ASCII.GetBytes(value, span[at..]);
    }

    private static int Integer(Span<byte> span, int prefixBits, byte high, int value)
    {
        var max = (1 << prefixBits) - 1;
        if (value < max)
        {
            span[0] = (byte)(high | value);
            return 1;
        }
        span[0] = (byte)(high | max);
        value -= max;
        var at = 1;
        while (value >= 128)
        {
            span[at++] = (byte)(value % 128 + 128);
            value /= 128;
        }
        span[at++] = (byte)value;
        return at;
    }

    private async Task ReadLoopAsync()
    {
        var buffer = new byte[1 << 18];
        int start = 0, end = 0;
        while (true)
        {
            var read = await _socket.ReceiveAsync(buffer.AsMemory(end), SocketFlags.None);
            if (read == 0) return;
            end += read;
            while (end - start >= 9)
            {
                var length = (buffer[start] << 16) | (buffer[start + 1] << 8) | buffer[start + 2];
                if (end - start < 9 + length) break;
                OnFrame(buffer[start + 3], buffer[start + 4], BinaryPrimitives.ReadInt32BigEndian(buffer.AsSpan(start + 5)) & int.MaxValue, buffer.AsSpan(start + 9, length));
                start += 9 + length;
            }
            if (start == end) start = end = 0;
            else if (buffer.Length - end < 32768)
            {
                Buffer.BlockCopy(buffer, start, buffer, 0, end - start);
                end -= start;
                start = 0;
            }
        }
    }

    private void OnFrame(byte type, byte flags, int streamId, ReadOnlySpan<byte> payload)
    {
        switch (type)
        {
            case 0: // DATA
                {
                    if ((flags & 8) != 0) payload = payload[1..^payload[0]];
                    _unacknowledgedData += payload.Length;
                    var stream = Find(streamId, (flags & 1) != 0);
                    if (stream is null) return;
                    if (payload.Length > 0)
                    {
                        stream.Body ??= new MemoryStream();
                        stream.Body.Write(payload);
                    }
                    if (_unacknowledgedData > 1 << 20)
                    {
                        var increment = (int)_unacknowledgedData;
                        _unacknowledgedData = 0;
                        Write(span =>
                        {
                            WriteFrameHeader(span, 4, 8, 0, 0);
                            BinaryPrimitives.WriteInt32BigEndian(span[9..], increment);
                            return 13;
                        });
                    }
                    if ((flags & 1) != 0) Complete(stream);
                    return;
                }
            case 1: // HEADERS (assumes END_HEADERS)
                {
                    if ((flags & 8) != 0) payload = payload[1..^payload[0]];
                    if ((flags & 0x20) != 0) payload = payload[5..];
                    var stream = Find(streamId, (flags & 1) != 0);
                    var response = stream?.Response ?? new H2Response();
                    _decoder.Decode(payload, response);
                    if (stream is not null && (flags & 1) != 0) Complete(stream);
                    return;
                }
            case 3: // RST_STREAM
                Find(streamId, true)?.TrySetException(new IOException("reset"));
                return;
            case 4: // SETTINGS
                if ((flags & 1) == 0) Write(span => WriteFrameHeader(span, 0, 4, 1, 0));
                return;
            case 6: // PING
                if ((flags & 1) == 0)
                {
                    var data = payload.ToArray();
                    Write(span =>
                    {
                        WriteFrameHeader(span, 8, 6, 1, 0);
                        data.CopyTo(span[9..]);
                        return 17;
                    });
                }
                return;
        }
    }

    private H2Stream? Find(int id, bool remove)
    {
        lock (_lock)
        {
            if (!_streams.TryGetValue(id, out var stream)) return null;
            if (remove) _streams.Remove(id);
            return stream;
        }
    }

    private void Complete(H2Stream stream)
    {
        Interlocked.Decrement(ref Active);
        if (stream.Body is { } body) stream.Response.Body = body.ToArray();
        stream.TrySetResult(stream.Response); // inline: the request continues on this thread
    }
}

sealed class HpackDecoder
{
    private static readonly (string, string)[] Static =
    [
        ("", ""), (":authority", ""), (":method", "GET"), (":method", "POST"), (":path", "/"), (":path", "/index.html"),
        (":scheme", "http"), (":scheme", "https"), (":status", "200"), (":status", "204"), (":status", "206"),
        (":status", "304"), (":status", "400"), (":status", "404"), (":status", "500"), ("accept-charset", ""),
        ("accept-encoding", "gzip, deflate"), ("accept-language", ""), ("accept-ranges", ""), ("accept", ""),
        ("access-control-allow-origin", ""), ("age", ""), ("allow", ""), ("authorization", ""), ("cache-control", ""),
        ("content-disposition", ""), ("content-encoding", ""), ("content-language", ""), ("content-length", ""),
        ("content-location", ""), ("content-range", ""), ("content-type", ""), ("cookie", ""), ("date", ""),
        ("etag", ""), ("expect", ""), ("expires", ""), ("from", ""), ("host", ""), ("if-match", ""),
        ("if-modified-since", ""), ("if-none-match", ""), ("if-range", ""), ("if-unmodified-since", ""),
        ("last-modified", ""), ("link", ""), ("location", ""), ("max-forwards", ""), ("proxy-authenticate", ""),
        ("proxy-authorization", ""), ("range", ""), ("referer", ""), ("refresh", ""), ("retry-after", ""),
        ("server", ""), ("set-cookie", ""), ("strict-transport-security", ""), ("transfer-encoding", ""),
        ("user-agent", ""), ("vary", ""), ("via", ""), ("www-authenticate", ""),
    ];

    private readonly List<(string, string)> _dynamic = [];

    private (string, string) Entry(int index) => index < Static.Length ? Static[index] : _dynamic[index - Static.Length];

    public void Decode(ReadOnlySpan<byte> block, H2Response response)
    {
        var at = 0;
        while (at < block.Length)
        {
            var b = block[at];
            string name, value;
            if ((b & 0x80) != 0)
            {
                (name, value) = Entry(ReadInteger(block, ref at, 7));
            }
            else if ((b & 0xC0) == 0x40)
            {
                var index = ReadInteger(block, ref at, 6);
                name = index == 0 ? ReadString(block, ref at) : Entry(index).Item1;
                value = ReadString(block, ref at);
                _dynamic.Insert(0, (name, value));
            }
            else if ((b & 0xE0) == 0x20)
            {
                ReadInteger(block, ref at, 5);
                _dynamic.Clear();
                continue;
            }
            else
            {
                var index = ReadInteger(block, ref at, 4);
                name = index == 0 ? ReadString(block, ref at) : Entry(index).Item1;
                value = ReadString(block, ref at);
            }
            if (name == ":status") response.Status = int.Parse(value);
            else response.Headers.Add((name, value));
        }
    }

    private static int ReadInteger(ReadOnlySpan<byte> block, ref int at, int prefixBits)
    {
        var max = (1 << prefixBits) - 1;
        var value = block[at++] & max;
        if (value < max) return value;
        var shift = 0;
        while (true)
        {
            var b = block[at++];
            value += (b & 127) << shift;
            shift += 7;
            if ((b & 128) == 0) return value;
        }
    }

    private static string ReadString(ReadOnlySpan<byte> block, ref int at)
    {
        if ((block[at] & 0x80) != 0) throw new NotSupportedException("Huffman");
        var length = ReadInteger(block, ref at, 7);
        var value = Encoding.ASCII.GetString(block.Slice(at, length));
        at += length;
        return value;
    }
}
