using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Serilog;
using Supervisor.Configuration;
using Supervisor.Workers;
using Yarp.ReverseProxy.Transforms;

namespace Supervisor.Proxy;

/// <summary>
/// The public side: Kestrel on the <c>--bind</c> addresses, and YARP forwarding every request to a
/// ready worker over its Unix socket.
/// </summary>
internal static class FrontDoor
{
    private static readonly TimeSpan PooledConnectionIdleTimeout = TimeSpan.FromSeconds(10);

    public static WebApplication Build(SupervisorOptions options, RunDirectory runDirectory, WorkerDestinations destinations, RequestLimits requestLimits, Serilog.ILogger logger)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.Services.AddSerilog(logger);
        // The supervisor handles its own signals: no console lifetime stopping the host behind its back.
        builder.Services.AddSingleton<IHostLifetime, SupervisorHostLifetime>();
        builder.Services.Configure<HostOptions>(host => host.ShutdownTimeout = options.GracefulTimeout);

        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            // The app's own Kestrel enforces its body limit (30 MB unless it says otherwise, per endpoint
            // with [RequestSizeLimit]); a second, blanket limit here would break the endpoints that raised it.
            kestrel.Limits.MaxRequestBodySize = null;
            foreach (var bind in options.Binds)
            {
                Listen(kestrel, bind);
            }
        });

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
            })
            .AddTransforms(transforms =>
            {
                // The app sees the Host the client asked for, not the worker's internal name.
                transforms.AddOriginalHost(useOriginal: true);
                // X-Forwarded-For/-Proto/-Host are replaced by YARP (a client's own values are dropped);
                // RFC 7239 Forwarded is not, so drop it: nobody may claim an address for the client.
                transforms.AddRequestHeaderRemove("Forwarded");
            });

        var app = builder.Build();
        var bootTimeout = options.BootTimeout;
        // Requests that arrive while no worker is ready (at start, or while all are being replaced)
        // wait for one instead of failing at once; after the boot timeout they get 503.
        app.Use(async (context, next) =>
        {
            if (destinations.Count == 0 && !await destinations.WaitForAnyAsync(bootTimeout, context.RequestAborted))
            {
                logger.Warning("No worker ready within {Timeout} s; answered {Method} {Path} with 503", bootTimeout.TotalSeconds, context.Request.Method, context.Request.Path);
                context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                return;
            }
            await next(context);
        });
        if (options.MaxRequests > 0)
        {
            app.MapReverseProxy(proxy =>
            {
                proxy.UseSessionAffinity();
                proxy.UseLoadBalancing();
                // Load balancing has narrowed the destinations to the one chosen worker: count it there.
                proxy.Use((context, next) =>
                {
                    if (context.GetReverseProxyFeature().AvailableDestinations is [var chosen])
                    {
                        requestLimits.OnRequestForwarded(chosen.DestinationId);
                    }
                    return next();
                });
                proxy.UsePassiveHealthChecks();
            });
        }
        else
        {
            app.MapReverseProxy();
        }
        destinations.Attach(app.Services.GetRequiredService<Yarp.ReverseProxy.IProxyStateLookup>());
        return app;
    }

    /// <summary>The addresses Kestrel really listens on (with the port it chose for :0), in Gunicorn's spelling.</summary>
    public static IEnumerable<string> ListeningAddresses(WebApplication app) =>
        app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses
            .Select(address => address.StartsWith("http://unix:", StringComparison.Ordinal) ? address["http://".Length..] : address)
        ?? [];

    private static void Listen(Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions kestrel, BindAddress bind)
    {
        switch (bind)
        {
            case UnixBind unix:
                RemoveStaleUnixSocket(unix.Path);
                kestrel.ListenUnixSocket(unix.Path);
                break;
            case TcpBind { Host: "localhost", Port: > 0 } tcp:
                kestrel.ListenLocalhost(tcp.Port);
                break;
            case TcpBind tcp:
                kestrel.Listen(tcp.Host == "localhost" ? IPAddress.Loopback : IPAddress.Parse(tcp.Host), tcp.Port);
                break;
        }
    }

    // A supervisor killed outright leaves its public socket file; a live one still accepts connections.
    private static void RemoveStaleUnixSocket(string path)
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
