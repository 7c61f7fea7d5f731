using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Serilog;
using Supervisor.Configuration;
using Supervisor.Logging;
using Supervisor.WorkerHost;
using Supervisor.Workers;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Transforms;

namespace Supervisor.Proxy;

/// <summary>
/// The public side: Kestrel on the <c>--bind</c> addresses with the request limits, forwarding every
/// request to the worker the <see cref="WorkerDispatcher"/> chose, over that worker's Unix socket.
/// Request by request: the access log times it; the client's identity is settled (trusted proxies only);
/// limits Kestrel does not check are checked; a worker is chosen or the request waits; then the
/// <see cref="DirectForwarder"/> forwards it if it has no body, and YARP forwards the rest.
/// </summary>
internal static class FrontDoor
{
    private static readonly TimeSpan PooledConnectionIdleTimeout = TimeSpan.FromSeconds(10);

    public static WebApplication Build(
        CurrentOptions current,
        X509Certificate2? certificate,
        RunDirectory runDirectory,
        WorkerDestinations destinations,
        WorkerDispatcher dispatcher,
        AccessLog accessLog,
        ConnectionHandoff handoff,
        Serilog.ILogger logger)
    {
        var options = current.Value;
        var signalR = new SignalRAffinity(TimeProvider.System);
        var cleartextHttp2 = new CleartextHttp2Listeners();
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.Services.AddSerilog(logger);
        builder.Services.AddSingleton(cleartextHttp2);
        // The supervisor handles its own signals: no console lifetime stopping the host behind its back.
        builder.Services.AddSingleton<IHostLifetime, SupervisorHostLifetime>();
        builder.Services.Configure<HostOptions>(host => host.ShutdownTimeout = options.GracefulTimeout);
        builder.WebHost.UseSockets(sockets => sockets.Backlog = options.Backlog);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            // A worker's response fields reach the client octet for octet: the front reads them as
            // Latin-1 (one char per octet) and writes them back the same way, obs-text included.
            kestrel.ResponseHeaderEncodingSelector = _ => Encoding.Latin1;
            ApplyLimits(kestrel.Limits, options);
            // --balancer kernel and handoff: the workers serve the binds (Kernel.SharedListenSockets). The
            // front is never started then, but these options may be read, and a unix: bind is bound here.
            foreach (var bind in options.Balancer.WorkersServeClients() ? [] : options.Binds)
            {
                Listen(kestrel, bind, certificate, cleartextHttp2, options.Backlog);
            }
        });

        builder.Services.Configure<Microsoft.AspNetCore.DataProtection.KeyManagement.KeyManagementOptions>(keys => keys.XmlRepository = new InMemoryKeyRepository());
        builder.Services.AddSingleton(destinations.Provider);
        builder.Services.AddSingleton<Yarp.ReverseProxy.Configuration.IProxyConfigProvider>(destinations.Provider);
        builder.Services.AddReverseProxy()
            .ConfigureHttpClient((_, handler) =>
            {
                handler.ConnectCallback = (context, cancellationToken) =>
                    ConnectToWorkerAsync(runDirectory.WorkerSocketPath(context.DnsEndPoint.Host), cancellationToken);
                // A new connection to a local socket costs microseconds; idle ones, and those left to
                // recycled workers, are released within seconds instead of the default minute.
                handler.PooledConnectionIdleTimeout = PooledConnectionIdleTimeout;
                // Field values as the app alone would see them: Kestrel decoded the client's octets as
                // UTF-8 and the worker decodes them so; response fields pass octet for octet (above).
                handler.RequestHeaderEncodingSelector = (_, _) => Encoding.UTF8;
                handler.ResponseHeaderEncodingSelector = (_, _) => Encoding.Latin1;
            })
            .AddTransforms(transforms =>
            {
                // A SignalR negotiate response is read whole here, so its connection's worker is known
                // before the client can name it (SignalRAffinity); the direct path does the same.
                transforms.AddResponseTransform(context => LearnSignalRConnectionAsync(context, signalR));
                // The app sees the Host the client asked for (or a trusted proxy reported), not the worker's internal name.
                transforms.AddOriginalHost(useOriginal: true);
                // X-Forwarded-For/-Proto/-Host are set by YARP from the settled client identity, replacing
                // whatever the request carried; RFC 7239 Forwarded is not, so it is dropped.
                transforms.AddRequestHeaderRemove("Forwarded");
                // Fields the client's Connection header names are hop-by-hop (RFC 9110 7.6.1), as on the direct path.
                transforms.AddRequestTransform(context =>
                {
                    foreach (var name in ForwardingRules.NamedInConnection(context.HttpContext.Request.Headers))
                    {
                        context.ProxyRequest.Headers.Remove(name);
                        context.ProxyRequest.Content?.Headers.Remove(name);
                    }
                    return ValueTask.CompletedTask;
                });
            });

        var app = builder.Build();
        app.Use(handoff.InvokeAsync);
        app.Use(accessLog.InvokeAsync);
        app.Use((context, next) =>
        {
            ForwardedHeaders.Settle(context, current.Value.ForwardedAllowIps);
            return next(context);
        });
        var requestLimits = new RequestLimits(options.LimitRequestFieldSize, options.LimitRequestBody);
        app.Use(requestLimits.InvokeAsync);
        app.Use(new DirectForwarder(current, dispatcher, signalR, new Http2.WorkerConnections(runDirectory.WorkerSocketPath), logger).InvokeAsync);
        app.MapReverseProxy(proxy =>
        {
            proxy.UseSessionAffinity();
            proxy.Use((context, next) => DispatchAsync(context, next, dispatcher, signalR, destinations.StickySessions, current.Value, logger));
        });
        destinations.Attach(app.Services.GetRequiredService<Yarp.ReverseProxy.IProxyStateLookup>());
        return app;
    }

    private static async ValueTask LearnSignalRConnectionAsync(Yarp.ReverseProxy.Transforms.ResponseTransformContext context, SignalRAffinity signalR)
    {
        if (context.ProxyResponse is not { IsSuccessStatusCode: true } response
            || response.Content.Headers.ContentLength is not (> 0 and <= SignalRAffinity.MaxNegotiateResponse)
            || !SignalRAffinity.IsNegotiate(context.HttpContext.Request)
            || context.HttpContext.Features.Get<WorkerLease>() is not { } lease)
        {
            return;
        }
        var body = await response.Content.ReadAsByteArrayAsync(context.CancellationToken);
        signalR.Learn(body, lease.Worker.Key);
        context.SuppressResponseBody = true;
        await context.HttpContext.Response.Body.WriteAsync(body, context.CancellationToken);
    }

    /// <summary>
    /// The addresses Kestrel really listens on (with the port it chose for :0), in Gunicorn's spelling;
    /// an h2c: address says so, since its URL alone would send an HTTP/1.1 client there.
    /// </summary>
    public static IEnumerable<string> ListeningAddresses(WebApplication app, IReadOnlyList<BindAddress> binds, bool https)
    {
        var cleartextHttp2 = app.Services.GetRequiredService<CleartextHttp2Listeners>();
        // Kestrel names an inherited socket by its address; the supervisor adds which descriptor it came as.
        var inherited = new Dictionary<string, int>();
        foreach (var fd in binds.OfType<FdBind>())
        {
            inherited.TryAdd($"{(https ? "https" : "http")}://{Native.ListeningSockets.AddressOf(fd.Descriptor) ?? "?"}", fd.Descriptor);
        }
        foreach (var address in app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [])
        {
            var shown = Shown(address);
            if (inherited.TryGetValue(address, out var descriptor))
            {
                shown += $" (fd {descriptor})";
            }
            yield return cleartextHttp2.Serves(address) ? $"{shown} (HTTP/2 with prior knowledge only)" : shown;
        }
    }

    /// <summary>A Kestrel address as Gunicorn writes it: <c>unix:/path</c>, not <c>http://unix:/path</c>.</summary>
    public static string Shown(string address) =>
        address.StartsWith("http://unix:", StringComparison.Ordinal) ? address["http://".Length..] : address;

    private static void ApplyLimits(KestrelServerLimits limits, SupervisorOptions options)
    {
        limits.MaxRequestLineSize = options.LimitRequestLine > 0 ? options.LimitRequestLine : EdgeLimits.MaxRequestLineBytes;
        limits.MaxRequestHeaderCount = options.LimitRequestFields;
        // Kestrel limits all headers together (32 KB); --limit-request-field-size is checked per field in RequestLimits.
        limits.MaxRequestHeadersTotalSize = Math.Max(limits.MaxRequestHeadersTotalSize, options.LimitRequestFieldSize);
        limits.Http2.MaxRequestHeaderFieldSize = Math.Max(limits.Http2.MaxRequestHeaderFieldSize, options.LimitRequestFieldSize);
        limits.KeepAliveTimeout = options.KeepAlive;
        limits.RequestHeadersTimeout = options.HeaderTimeout;
        // 0 leaves the body limit to the app's own Kestrel (30 MB unless an endpoint raises it); a blanket
        // limit here would break the endpoints that raised theirs.
        limits.MaxRequestBodySize = options.LimitRequestBody > 0 ? options.LimitRequestBody : null;
    }

    // YARP's path: a worker for the request, the slow-client guard on its response, and another worker
    // when the first one's socket refused the connection (nothing of the request was sent), or, once, when
    // the connection was lost before any of the response reached the client, for an idempotent request
    // without a body (the rule of the direct path: RFC 9110 9.2.2; a request with a body cannot be sent
    // again, it was read as it was sent).
    private static async Task DispatchAsync(HttpContext context, Func<Task> next, WorkerDispatcher dispatcher, SignalRAffinity signalR, bool stickySessions, SupervisorOptions options, Serilog.ILogger logger)
    {
        if (options.WorkerProtocol == WorkerProtocolVersion.Http1 && Refusal.IsGrpc(context.Request))
        {
            // gRPC ends every call in HTTP/2 trailers, which HTTP/1.1 to the worker cannot carry: the worker
            // would answer 400 and the client see a protocol error instead of the reason.
            await Refusal.WriteGrpcAsync(context, GrpcStatus.Unimplemented, "gRPC needs HTTP/2 to the workers: run the supervisor with --worker-protocol http2 (the default)");
            return;
        }
        var feature = context.GetReverseProxyFeature();
        // Session affinity has narrowed the destinations to the client's worker, if it has one that lives.
        var affinity = stickySessions && feature.AvailableDestinations.Count == 1
            ? feature.AvailableDestinations[0].DestinationId
            : signalR.WorkerFor(context.Request);
        var upgrade = context.Features.Get<IHttpUpgradeFeature>()?.IsUpgradableRequest == true;
        var body = context.Response.Body;
        var resendableAfterLoss = RequestMethods.IsIdempotent(context.Request.Method)
            && context.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody == false;
        string? failedWorker = null;
        for (var attempt = 1; ; attempt++)
        {
            if (await Admission.AdmitAsync(context, dispatcher, affinity, options.BootTimeout, failedWorker) is not { } lease)
            {
                return;
            }
            feature.AvailableDestinations = lease.Worker.Destination!;
            if (!upgrade)
            {
                context.Response.Body = new GuardedResponseBody(body, new SlowClientGuard(lease, options.SendTimeout, dispatcher));
            }
            try
            {
                await next();
            }
            finally
            {
                lease.Release();
                context.Response.Body = body;
            }
            WorkerBodyFailure.Correct(context);
            if (attempt < MaxAttempts && WorkerRefusedConnection(context))
            {
                dispatcher.MarkUnreachable(lease.Worker.Key, "refused a connection on its socket");
            }
            else if (attempt < MaxAttempts && resendableAfterLoss && ConnectionLostBeforeResponse(context) is { } loss)
            {
                resendableAfterLoss = false; // Once: a request that kills its worker costs two workers, not all.
                logger.Warning("Request {Method} {Path} was in flight at worker {Worker} when {Reason}; sending it again",
                    context.Request.Method, context.Request.Path, lease.Worker.Key, loss);
            }
            else
            {
                ForwarderErrorLog.Report(context, lease.Worker.Key, logger);
                return;
            }
            failedWorker = lease.Worker.Key;
            context.Features.Set<IForwarderErrorFeature>(null);
            context.Response.StatusCode = StatusCodes.Status200OK;
            affinity = null;
        }
    }

    private const int MaxAttempts = 3;

    // YARP failed to connect to the worker's socket, before sending anything, and has not answered yet.
    private static bool WorkerRefusedConnection(HttpContext context) =>
        !context.Response.HasStarted
        && context.GetForwarderErrorFeature() is { Error: ForwarderError.Request, Exception: HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError } exception }
        && exception.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionRefused or SocketError.AddressNotAvailable };

    // The worker took the request, or part of it, and its connection ended before any of the response
    // reached the client: before the response head came, or after it came but before its first body bytes.
    // YARP holds a head until the body's first bytes (it cannot tell a bodiless response sooner), so an SSE
    // stream or a long poll is in that state while the app waits to write. What it returns is the reason, for the log.
    private static string? ConnectionLostBeforeResponse(HttpContext context) =>
        context.Response.HasStarted ? null : context.GetForwarderErrorFeature() switch
        {
            { Error: ForwarderError.Request, Exception: HttpRequestException lost } => $"its connection was lost before the response ({lost.GetBaseException().Message})",
            { Error: ForwarderError.ResponseBodyDestination, Exception: HttpIOException { HttpRequestError: HttpRequestError.ResponseEnded } or IOException { InnerException: SocketException } }
                => "its connection was lost after the response head, before its body began",
            _ => null,
        };

    internal static void Listen(KestrelServerOptions kestrel, BindAddress bind, X509Certificate2? certificate, CleartextHttp2Listeners cleartextHttp2, int backlog)
    {
        Action<ListenOptions> configure = listen =>
        {
            if (certificate is not null)
            {
                listen.Protocols = HttpProtocols.Http1AndHttp2;
                listen.UseHttps(certificate);
            }
            else if (bind.CleartextHttp2)
            {
                listen.Protocols = HttpProtocols.Http2; // Kestrel's only way to serve h2c: no HTTP/1.1 on it.
                cleartextHttp2.Add(listen);
            }
        };
        switch (bind)
        {
            case UnixBind unix:
                RemoveStaleUnixSocket(unix.Path);
                kestrel.ListenHandle((ulong)UnixListenSockets.Bind(unix.Path, backlog), configure);
                break;
            case TcpBind { Host: "localhost", Port: > 0 } tcp:
                kestrel.ListenLocalhost(tcp.Port, configure);
                break;
            case TcpBind tcp:
                kestrel.Listen(tcp.Host == "localhost" ? IPAddress.Loopback : IPAddress.Parse(tcp.Host), tcp.Port, configure);
                break;
            case FdBind fd:
                if (!Native.Libc.SetCloseOnExec(fd.Descriptor))
                {
                    throw new IOException($"--bind {fd}: file descriptor {fd.Descriptor} is not open; it must be a listening socket the supervisor was started with");
                }
                kestrel.ListenHandle((ulong)fd.Descriptor, configure);
                break;
        }
    }

    // A supervisor killed outright leaves its public socket file; a live one still accepts connections.
    internal static void RemoveStaleUnixSocket(string path)
    {
        if (Native.Libc.GetPathStatus(path) is not { IsSocket: true } status || status.OwnerId != Native.Libc.EffectiveUserId)
        {
            return; // Nothing there, or not ours to delete: Kestrel's bind reports the conflict.
        }
        using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            probe.Connect(new UnixDomainSocketEndPoint(path));
        }
        catch (SocketException)
        {
            File.Delete(path);
        }
    }

    private static async ValueTask<Stream> ConnectToWorkerAsync(string socketPath, CancellationToken cancellationToken)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
