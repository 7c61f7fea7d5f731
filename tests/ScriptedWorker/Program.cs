using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using Supervisor.Proxy.Http2;
using Supervisor.Tests.Infrastructure;
using static Supervisor.Proxy.Http2.Http2Frame;
using FrameType = Supervisor.Proxy.Http2.Http2Frame.Type;

// A worker the supervisor runs like any app (on the socket ASPNETCORE_URLS names) that answers each
// request path with a scripted exchange of raw HTTP/2 frames. /ok and /slow?ms=N answer as any app
// would; /case/NAME breaks the protocol in the way NAME says.
var url = Environment.GetEnvironmentVariable("ASPNETCORE_URLS") ?? "";
if (!url.StartsWith("http://unix:", StringComparison.Ordinal))
{
    Console.Error.WriteLine($"the scripted worker needs ASPNETCORE_URLS=http://unix:PATH (got '{url}')");
    return 2;
}
var socketPath = url["http://unix:".Length..];
using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
listener.Bind(new UnixDomainSocketEndPoint(socketPath));
listener.Listen(512);
using var stop = new CancellationTokenSource();
using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
{
    context.Cancel = true;
    stop.Cancel();
});
Console.WriteLine($"scripted worker {Environment.ProcessId} listening");
try
{
    while (true)
    {
        var socket = await listener.AcceptAsync(stop.Token);
        _ = new ScriptedConnection(socket).RunAsync();
    }
}
catch (OperationCanceledException)
{
    return 0;
}

/// <summary>One connection from the supervisor, served frame by frame.</summary>
internal sealed class ScriptedConnection(Socket socket) : IDisposable
{
    // The GOAWAY case closes the first connection it is asked on, and only that one: the request it
    // refuses, sent again, is then answered on a new connection.
    private static int _goAwaySent;

    // Long enough for the front to have forwarded the head before the fault arrives.
    private static readonly TimeSpan ResponseUnderWay = TimeSpan.FromMilliseconds(300);

    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly HpackDecoder _decoder = new(1024 * 1024);

    public async Task RunAsync()
    {
        try
        {
            var preface = new byte[ClientPreface.Length];
            if (!await ReadExactlyAsync(preface) || !preface.AsSpan().SequenceEqual(ClientPreface))
            {
                return; // The supervisor's readiness probe: it connects and leaves.
            }
            await WriteAsync(Frames.Settings((Setting.MaxConcurrentStreams, 100)));
            var header = new byte[HeaderLength];
            List<KeyValuePair<string, string>>? fields = null;
            var blockStream = 0;
            while (await ReadExactlyAsync(header))
            {
                var (length, type, flags, streamId) = ReadHeader(header);
                var payload = new byte[length];
                if (!await ReadExactlyAsync(payload))
                {
                    return;
                }
                switch (type)
                {
                    case FrameType.Settings when (flags & Flags.Ack) == 0:
                        await WriteAsync(Frames.SettingsAck());
                        break;
                    case FrameType.Ping when (flags & Flags.Ack) == 0:
                        await WriteAsync(Frames.Ping(payload, ack: true));
                        break;
                    case FrameType.Headers or FrameType.Continuation:
                        if (type == FrameType.Headers)
                        {
                            fields = [];
                            blockStream = streamId;
                            _decoder.BeginBlock(fields);
                        }
                        _decoder.Decode(payload);
                        if ((flags & Flags.EndHeaders) != 0)
                        {
                            _decoder.EndBlock();
                            var path = fields!.First(field => field.Key == ":path").Value;
                            _ = AnswerAsync(blockStream, path);
                        }
                        break;
                }
            }
        }
        catch (Exception exception) when (exception is SocketException or ObjectDisposedException or IOException)
        {
        }
        finally
        {
            Dispose();
        }
    }

    public void Dispose()
    {
        socket.Dispose();
        _writeLock.Dispose();
    }

    private async Task AnswerAsync(int id, string path)
    {
        var query = path.Contains('?', StringComparison.Ordinal) ? path[(path.IndexOf('?', StringComparison.Ordinal) + 1)..] : "";
        var name = path.Split('?')[0];
        switch (name)
        {
            case "/ok":
                await AnswerOkAsync(id, "ok");
                break;
            case "/slow":
                Console.WriteLine("slow request started"); // The tests wait for this, through the supervisor's log.
                await Task.Delay(int.Parse(query["ms=".Length..], System.Globalization.CultureInfo.InvariantCulture));
                await AnswerOkAsync(id, $"slept on {Environment.ProcessId}");
                break;
            case "/case/informational-ends-stream":
                await WriteAsync(Frames.Headers(id, Frames.Head(100), endStream: true));
                break;
            case "/case/101":
                await WriteAsync(Frames.Headers(id, Frames.Head(101)));
                break;
            case "/case/many-informational":
                await WriteAsync([.. Enumerable.Range(0, 10).Select(_ => Frames.Headers(id, Frames.Head(103)))]);
                break;
            case "/case/data-before-headers":
                await WriteAsync(Frames.Data(id, "early"u8, endStream: true));
                break;
            case "/case/uppercase-field":
                await WriteAsync(Frames.Headers(id, Frames.Head(200, ("X-Upper", "1")), endStream: true));
                break;
            case "/case/huffman":
                var block = new HpackWriter().LiteralIndexedName(8, "200", huffman: true).Literal("x-huffman", "caf\u00e9 \u00fcber", index: true, huffman: true).ToArray();
                await WriteAsync(Frames.Headers(id, block), Frames.Data(id, "huffman"u8, endStream: true));
                break;
            case "/case/size-update-mid-block":
                await WriteAsync(Frames.Headers(id, new HpackWriter().Status(200).SizeUpdate(0).ToArray(), endStream: true));
                break;
            case "/case/settings":
                await WriteAsync(Frames.Settings(
                    (Setting.HeaderTableSize, 0), (Setting.MaxConcurrentStreams, 50), (Setting.InitialWindowSize, 1000),
                    (Setting.MaxFrameSize, 20_000), (Setting.MaxHeaderListSize, 16_384), (0x99, 1)));
                await AnswerOkAsync(id, "settings");
                break;
            case "/case/push-enabled":
                await WriteAsync(Frames.Settings((Setting.EnablePush, 1)));
                break;
            case "/case/over-window":
                // The stream starts with a 16 KB window, given back as the front forwards it: once the
                // response is under way, one octet more than the window given back.
                await WriteAsync(Frames.Headers(id, Frames.Head(200)), Frames.Data(id, new byte[DefaultMaxPayload]));
                await Task.Delay(ResponseUnderWay);
                await WriteAsync(Frames.Data(id, new byte[DefaultMaxPayload]), Frames.Data(id, new byte[1], endStream: true));
                break;
            case "/case/short-ping":
                await WriteAsync(Frames.Frame(FrameType.Ping, 0, 0, new byte[7]));
                break;
            case "/case/goaway":
                if (Interlocked.Exchange(ref _goAwaySent, 1) == 0)
                {
                    // Streams below this one are answered; this one and later ones are not.
                    await WriteAsync(Frames.GoAway(id - 2, ErrorCode.NoError));
                    return;
                }
                await AnswerOkAsync(id, "after goaway");
                break;
            case "/case/reset-mid-body":
                await WriteAsync(Frames.Headers(id, Frames.Head(200)), Frames.Data(id, "partial"u8));
                await Task.Delay(ResponseUnderWay);
                await WriteAsync(Frames.RstStream(id, ErrorCode.InternalError));
                break;
            case "/case/short-body":
                await WriteAsync(Frames.Headers(id, Frames.Head(200, ("content-length", "10"))), Frames.Data(id, "five!"u8));
                await Task.Delay(ResponseUnderWay);
                await WriteAsync(Frames.Data(id, [], endStream: true));
                break;
            case "/case/malformed-at-once":
                // The head and the fault in one write: the front finds it malformed before forwarding any of it.
                await WriteAsync(Frames.Headers(id, Frames.Head(200, ("content-length", "10"))), Frames.Data(id, "five!"u8, endStream: true));
                break;
            case "/case/huge-head":
                var huge = new HpackWriter().Status(200);
                for (var i = 0; i < 3; i++)
                {
                    huge.Literal($"x-huge-{i}", new string('h', 512 * 1024));
                }
                await WriteAsync(HeaderFrames(id, huge.ToArray()));
                break;
            case "/case/push-promise":
                await WriteAsync(Frames.Frame(FrameType.PushPromise, Flags.EndHeaders, id, [0, 0, 0, 2, 0x82]));
                break;
            case "/case/silent":
                break; // Never answers: the request's own timeout must end it.
            default:
                await WriteAsync(Frames.Headers(id, Frames.Head(404), endStream: true));
                break;
        }
    }

    private Task AnswerOkAsync(int id, string body)
    {
        var octets = Encoding.ASCII.GetBytes(body);
        return WriteAsync(Frames.Headers(id, Frames.Head(200, ("content-length", octets.Length.ToString(System.Globalization.CultureInfo.InvariantCulture)))), Frames.Data(id, octets, endStream: true));
    }

    // A header block in HEADERS and CONTINUATION frames of at most 16 KB.
    private static byte[][] HeaderFrames(int id, byte[] block)
    {
        var frames = new List<byte[]> { Frames.Headers(id, block[..Math.Min(DefaultMaxPayload, block.Length)], endStream: true, endHeaders: block.Length <= DefaultMaxPayload) };
        for (var at = DefaultMaxPayload; at < block.Length; at += DefaultMaxPayload)
        {
            frames.Add(Frames.Continuation(id, block[at..Math.Min(at + DefaultMaxPayload, block.Length)], endHeaders: at + DefaultMaxPayload >= block.Length));
        }
        return [.. frames];
    }

    private async Task WriteAsync(params byte[][] frames)
    {
        await _writeLock.WaitAsync();
        try
        {
            await socket.SendAsync(frames.SelectMany(frame => frame).ToArray());
        }
        catch (Exception exception) when (exception is SocketException or ObjectDisposedException)
        {
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private async Task<bool> ReadExactlyAsync(byte[] buffer)
    {
        for (var read = 0; read < buffer.Length;)
        {
            var count = await socket.ReceiveAsync(buffer.AsMemory(read));
            if (count == 0)
            {
                return false;
            }
            read += count;
        }
        return true;
    }
}
