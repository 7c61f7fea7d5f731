using System.Reflection;

using System.Security.Claims;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.DataProtection;

// Misbehaviour is chosen through configuration, so a test can set it with the supervisor's --env
// (TESTAPP_FAIL_AT_START=...) or change it on disk in appsettings.json before a reload:
//   TESTAPP_FAIL_AT_START=text   write text to stderr and exit 1 before the server starts
//   TESTAPP_START_DELAY_MS=n     sleep n ms before the server starts (a slow or never-ready worker)
//   TESTAPP_KEEPALIVE_MS=n       Kestrel closes connections idle for n ms (its default: 130 s)
//   TESTAPP_ANNOUNCE=1           print "listening on ADDRESS" once listening (the app run alone, port 0)
var builder = WebApplication.CreateBuilder(args);
builder.Logging.SetMinimumLevel(LogLevel.Warning);

if (builder.Configuration["TESTAPP_FAIL_AT_START"] is { Length: > 0 } failure)
{
    Console.Error.WriteLine(failure);
    return 1;
}
if (int.TryParse(builder.Configuration["TESTAPP_START_DELAY_MS"], out var startDelay))
{
    Thread.Sleep(startDelay);
}
if (int.TryParse(builder.Configuration["TESTAPP_KEEPALIVE_MS"], out var keepAlive))
{
    builder.WebHost.ConfigureKestrel(kestrel => kestrel.Limits.KeepAliveTimeout = TimeSpan.FromMilliseconds(keepAlive));
}
// Headers named X-Latin1-* are written as Latin-1 (obs-text), which an app may choose to send.
builder.WebHost.ConfigureKestrel(kestrel => kestrel.ResponseHeaderEncodingSelector =
    name => name.StartsWith("X-Latin1", StringComparison.OrdinalIgnoreCase) ? System.Text.Encoding.Latin1 : null);

// An app that keeps its own DataProtection keys (TESTAPP_KEYS_DIR) must keep them under the supervisor.
if (builder.Configuration["TESTAPP_KEYS_DIR"] is { Length: > 0 } keysDirectory)
{
    builder.Services.AddDataProtection().PersistKeysToFileSystem(new DirectoryInfo(keysDirectory));
}
builder.Services.AddAuthentication(CookieAuthenticationDefaults.AuthenticationScheme).AddCookie();
builder.Services.AddAuthorization();
builder.Services.AddAntiforgery(options => options.HeaderName = "X-CSRF-TOKEN");
builder.Services.AddSignalR();
builder.Services.AddGrpc();

// Read once at start: a worker keeps the code and configuration it booted with.
var version = typeof(Program).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()!.InformationalVersion.Split('+')[0];
var release = builder.Configuration["Release"] ?? "";

var app = builder.Build();
// An app slow to stop (TESTAPP_STOP_DELAY_MS): its shutdown blocks that long after SIGTERM.
if (int.TryParse(builder.Configuration["TESTAPP_STOP_DELAY_MS"], out var stopDelay))
{
    app.Lifetime.ApplicationStopping.Register(() => Thread.Sleep(stopDelay));
}
if (builder.Configuration["TESTAPP_ANNOUNCE"] == "1")
{
    app.Lifetime.ApplicationStarted.Register(() => Console.WriteLine("listening on " + string.Join(' ',
        app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>().Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()!.Addresses)));
}
// Every request this process saw, so a test can show that one was stopped before it reached a worker,
// and compare, once it has stopped, with what the supervisor says it gave this worker.
long served = 0;
app.Lifetime.ApplicationStopped.Register(() => Console.WriteLine($"saw {Interlocked.Read(ref served)} requests"));
app.Use((context, next) =>
{
    Interlocked.Increment(ref served);
    // A test that must know which process answered (a failure cut after the head) asks for it.
    if (context.Request.Headers.ContainsKey("X-Which-Worker"))
    {
        context.Response.Headers["X-Worker-Pid"] = Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }
    return next(context);
});
app.UseWebSockets();
app.UseAuthentication();
app.UseAuthorization();
app.UseAntiforgery();

app.MapGet("/", () => "ok");
app.MapGet("/whoami", (HttpContext context) => new WhoAmI(
    Environment.ProcessId,
    context.Connection.RemoteIpAddress?.ToString(),
    context.Request.Host.Value,
    context.Request.Scheme,
    Environment.GetEnvironmentVariable("SUPERVISOR_WORKER_ID"),
    Environment.CurrentDirectory));
app.MapGet("/version", () => $"{version} {release} {Environment.ProcessId}");
app.MapGet("/connection", (HttpContext context) => context.Connection.Id);
app.MapGet("/requests", () => Interlocked.Read(ref served).ToString(System.Globalization.CultureInfo.InvariantCulture));
var slowNow = 0;
var slowPeak = 0;
app.MapMethods("/slow", ["GET", "POST"], async (int ms) =>
{
    var concurrent = Interlocked.Increment(ref slowNow);
    InterlockedMax(ref slowPeak, concurrent);
    // Tests wait for this line (the supervisor logs worker output) to know the request is in flight.
    Console.WriteLine($"slow request started: {ms} ms");
    // Deliberately not cancelled by shutdown: a graceful stop must let it finish.
    await Task.Delay(ms);
    Interlocked.Decrement(ref slowNow);
    return Results.Text($"slept {ms} ms in {Environment.ProcessId}, at most {Volatile.Read(ref slowPeak)} at once");
});
// Cookie authentication and antiforgery: both rest on DataProtection keys.
app.MapPost("/login", async (HttpContext context, string name) =>
{
    var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, name)], CookieAuthenticationDefaults.AuthenticationScheme);
    await context.SignInAsync(new ClaimsPrincipal(identity));
    return $"signed in by {Environment.ProcessId}";
}).DisableAntiforgery();
app.MapGet("/me", (ClaimsPrincipal user) => $"{user.Identity!.Name} {Environment.ProcessId}").RequireAuthorization();
app.MapGet("/antiforgery/token", (HttpContext context, IAntiforgery antiforgery) => antiforgery.GetAndStoreTokens(context).RequestToken!);
app.MapPost("/antiforgery/check", async (HttpContext context, IAntiforgery antiforgery) =>
{
    try
    {
        await antiforgery.ValidateRequestAsync(context);
        return Results.Text($"token accepted by {Environment.ProcessId}");
    }
    catch (AntiforgeryValidationException exception)
    {
        return Results.BadRequest($"token rejected by {Environment.ProcessId}: {exception.Message}");
    }
}).DisableAntiforgery();

// Streams both ways, for the proxy-to-worker protocol: a WebSocket echo, a large upload and download.
app.Map("/ws", async (HttpContext context) =>
{
    if (!context.WebSockets.IsWebSocketRequest)
    {
        return Results.BadRequest("not a WebSocket request");
    }
    using var socket = await context.WebSockets.AcceptWebSocketAsync();
    var buffer = new byte[64 * 1024];
    while (true)
    {
        var received = await socket.ReceiveAsync(buffer, CancellationToken.None);
        if (received.MessageType == System.Net.WebSockets.WebSocketMessageType.Close)
        {
            await socket.CloseAsync(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None);
            return Results.Empty;
        }
        await socket.SendAsync(buffer.AsMemory(0, received.Count), received.MessageType, received.EndOfMessage, CancellationToken.None);
    }
});
app.MapPost("/upload", async (HttpRequest request) =>
{
    using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
    var buffer = new byte[81920];
    long length = 0;
    int read;
    while ((read = await request.Body.ReadAsync(buffer)) > 0)
    {
        sha.AppendData(buffer, 0, read);
        length += read;
    }
    return $"{length} {Convert.ToHexString(sha.GetHashAndReset())}";
}).DisableAntiforgery();
// Byte i of a download is (i % 251): the client can check every byte without a copy. One block for all,
// as an app serving a file reads it from the page cache: thousands of downloads at once cost no garbage.
var downloadBlock = new byte[251 * 4096];
for (var i = 0; i < downloadBlock.Length; i++)
{
    downloadBlock[i] = (byte)(i % 251);
}
// POST too: a request with a body takes YARP's path to the worker, not the front's own client.
app.MapMethods("/download", ["GET", "POST"], async (HttpResponse response, int mb) =>
{
    var block = downloadBlock;
    long remaining = mb * 1_048_576L;
    response.ContentLength = remaining;
    if (response.SupportsTrailers())
    {
        response.AppendTrailer("x-sent", remaining.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }
    while (remaining > 0)
    {
        // 64 KB a write, as an app streaming a file does (Stream.CopyToAsync's 80 KB): Kestrel takes a
        // whole write into its buffer before flow control holds the app back.
        var chunk = (int)Math.Min(remaining, 251 * 256);
        await response.Body.WriteAsync(block.AsMemory(0, chunk));
        remaining -= chunk;
    }
});

// A response that never ends on its own: the test reads some and leaves; the worker must learn it
// (RST_STREAM from the front) and stop, or it would write into the void for ever.
var abandonedStreams = 0;
app.MapGet("/stream", async (HttpContext context) =>
{
    var block = new byte[64 * 1024];
    try
    {
        while (true)
        {
            await context.Response.Body.WriteAsync(block, context.RequestAborted);
        }
    }
    catch (Exception exception) when (exception is OperationCanceledException or IOException)
    {
        Interlocked.Increment(ref abandonedStreams);
    }
});
app.MapGet("/stream/abandoned", () => Volatile.Read(ref abandonedStreams).ToString(System.Globalization.CultureInfo.InvariantCulture));
// Header blocks larger than one HTTP/2 frame, both ways: n response fields of 1,000 characters, and
// the request's x-fill-* fields counted back.
app.MapGet("/headers", (HttpContext context, int n) =>
{
    for (var i = 0; i < n; i++)
    {
        context.Response.Headers[$"x-fill-{i}"] = new string((char)('a' + i % 26), 1000);
    }
    var received = context.Request.Headers.Where(header => header.Key.StartsWith("x-fill-", StringComparison.OrdinalIgnoreCase)).Sum(header => header.Value.ToString().Length);
    return received.ToString(System.Globalization.CultureInfo.InvariantCulture);
});

// What the app saw of a request, every character shown as itself or \uXXXX, so that a test can compare
// the app alone with the app behind the supervisor exactly.
app.Map("/echo/{**rest}", (HttpContext context) =>
{
    var request = context.Request;
    var text = new System.Text.StringBuilder();
    text.Append($"{request.Method} {Escape(context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpRequestFeature>()!.RawTarget)}\n");
    text.Append($"path {Escape(request.Path.Value ?? "")} query {Escape(request.QueryString.Value ?? "")}\n");
    foreach (var (name, values) in request.Headers.OrderBy(header => header.Key, StringComparer.OrdinalIgnoreCase))
    {
        foreach (var value in values)
        {
            text.Append($"{name.ToLowerInvariant()}: {Escape(value ?? "")}\n");
        }
    }
    return Results.Text(text.ToString());
});
// A server-sent-events stream: the head at once, then an event every ms milliseconds; with stamp=true each
// carries the moment it was written (Stopwatch ticks: CLOCK_MONOTONIC, the same in every process here),
// and so does the head (X-Head-Written).
app.MapGet("/sse", async (HttpContext context, int events, int ms, bool stamp = false) =>
{
    context.Response.ContentType = "text/event-stream";
    if (stamp)
    {
        context.Response.Headers["X-Head-Written"] = System.Diagnostics.Stopwatch.GetTimestamp().ToString(System.Globalization.CultureInfo.InvariantCulture);
    }
    await context.Response.Body.FlushAsync();
    for (var i = 0; i < events; i++)
    {
        await Task.Delay(ms);
        await context.Response.WriteAsync(stamp ? $"data: event {i} written {System.Diagnostics.Stopwatch.GetTimestamp()}\n\n" : $"data: event {i}\n\n");
        await context.Response.Body.FlushAsync();
    }
});
// A head sent at once and a body held until a file exists: a test kills the worker in between. It is
// told so once the front has read the head off the socket (nothing left unread in it), so that a kill
// then lands after the head, not before it.
app.MapGet("/held", async (HttpContext context, string until) =>
{
    await context.Response.Body.FlushAsync();
    if (context.Features.Get<Microsoft.AspNetCore.Connections.Features.IConnectionSocketFeature>()?.Socket is { } socket)
    {
        for (var waited = 0; UnreadBytes(socket) > 0 && waited < 10_000; waited += 5)
        {
            await Task.Delay(5);
        }
    }
    Console.WriteLine($"holding the body in {Environment.ProcessId} until {until} exists");
    // Bounded, so a test that never creates the file leaves no request behind.
    for (var waited = 0; !File.Exists(until) && waited < 60_000; waited += 20)
    {
        await Task.Delay(20);
    }
    await context.Response.WriteAsync($"released in {Environment.ProcessId}");
});
app.MapMethods("/status/{code:int}", ["GET", "HEAD"], (HttpContext context, int code) =>
{
    context.Response.StatusCode = code;
    context.Response.Headers["X-Status"] = code.ToString(System.Globalization.CultureInfo.InvariantCulture);
    if (code == 304 || code == 204 || HttpMethods.IsHead(context.Request.Method))
    {
        return Task.CompletedTask;
    }
    return context.Response.WriteAsync($"status {code}\n");
});
app.MapMethods("/sized", ["GET", "HEAD"], async (HttpContext context) =>
{
    context.Response.ContentLength = 11;
    if (!HttpMethods.IsHead(context.Request.Method))
    {
        await context.Response.WriteAsync("eleven char");
    }
});
app.MapMethods("/obs-text", ["GET", "POST"], (HttpContext context) =>
{
    context.Response.Headers["X-Latin1-Name"] = "caf\u00e9 na\u00efve \u00ff";
    return "obs-text\n";
});
app.MapGet("/big-header", (HttpContext context, int kb) =>
{
    context.Response.Headers["X-Big"] = new string('h', kb * 1024);
    return "big header\n";
});
app.MapGet("/cookies", (HttpContext context, int n) =>
{
    for (var i = 0; i < n; i++)
    {
        context.Response.Headers.Append("Set-Cookie", $"c{i}=v{i}; Path=/; HttpOnly");
    }
    return "cookies\n";
});
app.MapGet("/chunks", async (HttpContext context, int n, int ms) =>
{
    for (var i = 0; i < n; i++)
    {
        await context.Response.WriteAsync($"chunk {i}\n");
        await context.Response.Body.FlushAsync();
        await Task.Delay(ms);
    }
});
app.MapGet("/trailers", async (HttpContext context) =>
{
    if (context.Response.SupportsTrailers())
    {
        context.Response.DeclareTrailer("x-checksum");
    }
    await context.Response.WriteAsync("body with trailers\n");
    if (context.Response.SupportsTrailers())
    {
        context.Response.AppendTrailer("x-checksum", "abc123");
        context.Response.AppendTrailer("x-trailer-latin", "fine");
    }
});

var held = new List<byte[]>();
app.MapGet("/allocate", (int mb) =>
{
    // Touch every page, so the memory is resident (what --max-memory watches), and keep it.
    for (var i = 0; i < mb; i++)
    {
        var block = new byte[1 << 20];
        Array.Fill(block, (byte)1);
        lock (held)
        {
            held.Add(block);
        }
    }
    return $"holding {held.Count} MB in {Environment.ProcessId}";
});
// Logs one entry through the app's console logger, as an app's own code would.
app.MapPost("/log", (ILoggerFactory loggers, LogLevel level, string message) => loggers.CreateLogger("TestApp").Log(level, "{Message}", message));
app.MapGet("/env/{name}", (string name) => Environment.GetEnvironmentVariable(name) ?? "");

// A SignalR hub: its connections live in one worker's memory, as every hub's do.
app.MapHub<WorkerHub>("/hubs/worker");
app.MapGrpcService<EchoService>();

app.Run();
return 0;

static string Escape(string value)
{
    var escaped = new System.Text.StringBuilder();
    foreach (var c in value)
    {
        escaped.Append(c is >= ' ' and <= '~' && c != '\\' ? c.ToString() : $"\\u{(int)c:x4}");
    }
    return escaped.ToString();
}

// Bytes this process wrote to a socket that its peer has not read yet (SIOCOUTQ).
static int UnreadBytes(System.Net.Sockets.Socket socket) => Ioctl(socket.Handle, 0x5411, out var unread) == 0 ? unread : 0;

[System.Runtime.InteropServices.DllImport("libc", EntryPoint = "ioctl", SetLastError = true)]
static extern int Ioctl(nint descriptor, nuint request, out int value);

static void InterlockedMax(ref int target, int value)
{
    int seen;
    while ((seen = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, seen) != seen)
    {
    }
}

internal sealed record WhoAmI(int Pid, string? RemoteAddress, string? Host, string Scheme, string? WorkerId, string WorkingDirectory);

/// <summary>Answers with the pid of the worker holding the connection, and echoes what it is sent.</summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Performance", "CA1822", Justification = "SignalR invokes hub methods on an instance")]
internal sealed class WorkerHub : Microsoft.AspNetCore.SignalR.Hub
{
    public int Pid() => Environment.ProcessId;

    public string Echo(string text) => text;
}

/// <summary>
/// The gRPC service of <see cref="Supervisor.Testing.GrpcEcho"/>. Grpc.AspNetCore finds each method by its
/// name and takes it only if it is virtual and first declared on the type the attribute names, as the
/// generated base classes are.
/// </summary>
[Grpc.Core.BindServiceMethod(typeof(EchoService), nameof(BindService))]
[System.Diagnostics.CodeAnalysis.SuppressMessage("Performance", "CA1822", Justification = "gRPC invokes service methods on an instance")]
[System.Diagnostics.CodeAnalysis.SuppressMessage("Performance", "CA1852", Justification = "gRPC binds only virtual methods, which a sealed type cannot have")]
internal class EchoService
{
    public static void BindService(Grpc.Core.ServiceBinderBase binder, EchoService? service)
    {
        binder.AddMethod(Supervisor.Testing.GrpcEcho.Say, (Grpc.Core.UnaryServerMethod<string, string>?)null);
        binder.AddMethod(Supervisor.Testing.GrpcEcho.Count, (Grpc.Core.ServerStreamingServerMethod<string, string>?)null);
        binder.AddMethod(Supervisor.Testing.GrpcEcho.Fail, (Grpc.Core.UnaryServerMethod<string, string>?)null);
    }

    public virtual Task<string> Say(string request, Grpc.Core.ServerCallContext context) => Task.FromResult($"{request} from {Environment.ProcessId}");

    public virtual Task<string> Fail(string request, Grpc.Core.ServerCallContext context) =>
        throw new Grpc.Core.RpcException(new Grpc.Core.Status(Grpc.Core.StatusCode.NotFound, request), [new("where", Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture))]);

    public virtual async Task Count(string request, Grpc.Core.IServerStreamWriter<string> responses, Grpc.Core.ServerCallContext context)
    {
        for (var i = 1; i <= int.Parse(request, System.Globalization.CultureInfo.InvariantCulture); i++)
        {
            await responses.WriteAsync(i.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
    }
}
