using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;

namespace Supervisor.WorkerHost;

/// <summary>
/// --balancer kernel and handoff: what the proxy front does for each request in proxy mode, done by the
/// worker-host in the worker that serves the client itself: the client's identity as a trusted proxy
/// gives it (<paramref name="ForwardedAllowIps"/>), TLS (<paramref name="Tls"/>), and the access-log line
/// (<paramref name="AccessLog"/>).
/// </summary>
internal sealed record ClientServing(TrustedProxies ForwardedAllowIps, TlsFiles? Tls, AccessLogTarget? AccessLog)
{
    internal static ClientServing FromEnvironment()
    {
        var trusted = Environment.GetEnvironmentVariable(WorkerProtocol.ForwardedAllowIpsVariable) ?? "";
        var certFile = Environment.GetEnvironmentVariable(WorkerProtocol.CertFileVariable);
        var keyFile = Environment.GetEnvironmentVariable(WorkerProtocol.KeyFileVariable);
        var accessLogSocket = Environment.GetEnvironmentVariable(WorkerProtocol.AccessLogSocketVariable);
        var accessLogFormat = Environment.GetEnvironmentVariable(WorkerProtocol.AccessLogFormatVariable);
        return new ClientServing(
            // The supervisor checked the list before it started this worker; an empty one trusts no proxy.
            TrustedProxies.Parse(trusted.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)),
            string.IsNullOrEmpty(certFile) || string.IsNullOrEmpty(keyFile) ? null : new TlsFiles(certFile, keyFile),
            string.IsNullOrEmpty(accessLogSocket) || string.IsNullOrEmpty(accessLogFormat) ? null : new AccessLogTarget(accessLogSocket, AccessLogFormat.Parse(accessLogFormat)));
    }
}

/// <summary>The PEM certificate and private key the worker serves TLS with, read when its Kestrel starts.</summary>
internal sealed record TlsFiles(string CertFile, string KeyFile);

/// <summary>Where the worker sends its access-log lines, and their format.</summary>
internal sealed record AccessLogTarget(string SocketPath, AccessLogFormat Format);

/// <summary>
/// Ahead of the app's middleware in kernel and handoff modes: the access log, outermost so that it sees each
/// request's final status and the client as settled; then the client's address, scheme and host, from a
/// trusted proxy's headers or the connection itself, with the forwarding headers removed (as the front does).
/// </summary>
internal sealed class ClientServingStartupFilter(ClientServing serving, AccessLogSender? accessLog) : IStartupFilter
{
    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
    {
        if (accessLog is not null && serving.AccessLog is { } target)
        {
            int? pid = Environment.ProcessId;
            app.Use((context, nextMiddleware) => AccessLogRecording.RecordAsync(context, nextMiddleware, target.Format, _ => pid, accessLog.Send));
        }
        var trusted = serving.ForwardedAllowIps;
        app.Use((context, nextMiddleware) =>
        {
            ForwardedHeaders.Settle(context, trusted);
            return nextMiddleware(context);
        });
        next(app);
    };
}
