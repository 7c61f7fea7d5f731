using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;

namespace Supervisor.WorkerHost;

/// <summary>
/// The app's Kestrel serves the public listeners, with the supervisor's keep-alive time: the inherited
/// listening sockets (kernel mode), or the connections the supervisor hands over (handoff mode); with
/// --certfile, over TLS with HTTP/2 by ALPN, as the proxy front serves it.
/// </summary>
internal sealed class KernelListenSetup(KernelListening kernel, TlsFiles? tls) : IPostConfigureOptions<KestrelServerOptions>
{
    public void PostConfigure(string? name, KestrelServerOptions options)
    {
        // Read from disk by each worker as it starts: a renewed certificate is served by every worker
        // started after it is written (a reload, a recycle), with no restart of the supervisor.
        var certificate = tls is null ? null : X509Certificate2.CreateFromPemFile(tls.CertFile, tls.KeyFile);
        foreach (var listener in kernel.Listeners)
        {
            Action<ListenOptions> configure = listen =>
            {
                if (certificate is not null)
                {
                    listen.Protocols = HttpProtocols.Http1AndHttp2;
                    listen.UseHttps(certificate);
                }
                else if (listener.CleartextHttp2)
                {
                    listen.Protocols = HttpProtocols.Http2; // Kestrel's only way to serve h2c, as the proxy front does.
                }
            };
            if (kernel.HandoffSocket is null)
            {
                options.ListenHandle((ulong)listener.Number, configure);
            }
            else
            {
                options.Listen(new HandoffEndPoint(listener), configure);
            }
        }
        options.Limits.KeepAliveTimeout = kernel.KeepAlive;
    }
}

/// <summary>
/// Ahead of the app's middleware, in kernel mode: counts the requests for --max-requests (the worker
/// asks the supervisor for its recycle once, at the limit) and, once the worker drains, makes every
/// HTTP/1.x response close its connection, so the client's next request goes to another worker.
/// </summary>
internal sealed class KernelRequestsStartupFilter(ServedRequests served, ConnectionGate gate) : IStartupFilter
{
    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
    {
        // Decided as the head goes out, not as the request comes in: a request already in flight when the
        // drain begins (a slow one) is answered with close too, so its client does not send the next
        // request on a connection the worker closes as it stops. One delegate for all requests, the
        // response as its state: nothing is allocated per request.
        Func<object, Task> closeIfDraining = state =>
        {
            var response = (HttpResponse)state;
            if (gate.IsDraining)
            {
                response.Headers[HeaderNames.Connection] = "close";
            }
            return Task.CompletedTask;
        };
        app.Use((context, nextMiddleware) =>
        {
            served.Count();
            if (!HttpProtocol.IsHttp2(context.Request.Protocol) && !HttpProtocol.IsHttp3(context.Request.Protocol)
                && context.Features.Get<IHttpUpgradeFeature>()?.IsUpgradableRequest != true)
            {
                context.Response.OnStarting(closeIfDraining, context.Response);
            }
            return nextMiddleware(context);
        });
        next(app);
    };
}

/// <summary>Requests this worker has served, and the one message at its --max-requests limit.</summary>
internal sealed class ServedRequests(long limit, Action<long> onLimitReached)
{
    private long _count;

    public long Total => Interlocked.Read(ref _count);

    public void Count()
    {
        if (Interlocked.Increment(ref _count) == limit)
        {
            onLimitReached(limit);
        }
    }
}
