using Yarp.ReverseProxy.Forwarder;

namespace Supervisor.Proxy;

/// <summary>
/// What went wrong on YARP's path, in the supervisor's words and at the level it deserves, once per
/// request. YARP's own lines (category Yarp) are kept to errors: they named no worker, logged a client
/// that went away as a warning with a stack trace, and repeated what the supervisor already handles
/// (a sticky cookie for a recycled worker, a refused connection it sends again).
/// </summary>
internal static class ForwarderErrorLog
{
    public static void Report(HttpContext context, string worker, ILogger log)
    {
        if (context.GetForwarderErrorFeature() is not { } failure)
        {
            return;
        }
        var request = context.Request;
        var reason = failure.Exception?.GetBaseException().Message ?? failure.Error.ToString();
        switch (failure.Error)
        {
            // The client went away or sent a bad body: its own request ends, nothing is wrong here.
            case ForwarderError.RequestCanceled or ForwarderError.RequestBodyCanceled or ForwarderError.RequestBodyClient
                or ForwarderError.ResponseBodyCanceled or ForwarderError.ResponseBodyClient
                or ForwarderError.UpgradeRequestCanceled or ForwarderError.UpgradeRequestClient
                or ForwarderError.UpgradeResponseCanceled or ForwarderError.UpgradeResponseClient:
                log.Debug("Client of {Method} {Path} at worker {Worker} went away: {Error} ({Reason})", request.Method, request.Path, worker, failure.Error, reason);
                break;
            // A WebSocket the worker ends abruptly: every open one does when its worker is recycled.
            case ForwarderError.UpgradeRequestDestination or ForwarderError.UpgradeResponseDestination:
                log.Information("WebSocket {Path} at worker {Worker} ended by the worker: {Reason}", request.Path, worker, reason);
                break;
            case ForwarderError.RequestTimedOut:
                log.Warning("Request {Method} {Path} got no response from worker {Worker} within --request-timeout; answered {Status}", request.Method, request.Path, worker, context.Response.StatusCode);
                break;
            default:
                log.Warning("Request {Method} {Path} to worker {Worker} failed {Stage}: {Reason}; {Outcome}", request.Method, request.Path, worker, Stage(failure.Error), reason,
                    context.Response.HasStarted ? "its response was cut short" : $"answered {context.Response.StatusCode}");
                break;
        }
    }

    private static string Stage(ForwarderError error) => error switch
    {
        ForwarderError.Request => "before its response began",
        ForwarderError.RequestBodyDestination => "while the worker read its body",
        ForwarderError.ResponseHeaders => "in its response headers",
        ForwarderError.ResponseBodyDestination => "while the worker sent its response",
        _ => $"({error})",
    };
}
