using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;

namespace Supervisor.WorkerHost;

/// <summary>
/// Puts the client's real address and scheme where the app looks for them
/// (<see cref="ConnectionInfo.RemoteIpAddress"/>, <see cref="HttpRequest.Scheme"/>), ahead of the app's
/// own middleware. The supervisor's proxy keeps the client's Host header as it is.
/// </summary>
/// <remarks>
/// Only requests that arrived over the worker's Unix socket are trusted: that socket sits in a directory
/// only the supervisor's user can open, and the supervisor replaces whatever X-Forwarded-* a client sent.
/// A request reaching the app over TCP (an app that also listens on a port of its own) is left alone,
/// so nobody can spoof an address by talking to the app directly.
/// </remarks>
internal sealed class ForwardedFromSupervisorStartupFilter : IStartupFilter
{
    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
    {
        app.Use(static (context, nextMiddleware) =>
        {
            ApplyForwardedValues(context);
            return nextMiddleware(context);
        });
        next(app);
    };

    internal static void ApplyForwardedValues(HttpContext context)
    {
        if (context.Connection.RemoteIpAddress is not null)
        {
            return; // Not a Unix-socket connection from the supervisor.
        }
        var headers = context.Request.Headers;
        if (IPAddress.TryParse(headers["X-Forwarded-For"].ToString(), out var clientAddress))
        {
            context.Connection.RemoteIpAddress = clientAddress;
        }
        var scheme = headers["X-Forwarded-Proto"].ToString();
        if (scheme is "http" or "https")
        {
            context.Request.Scheme = scheme;
        }
    }
}
