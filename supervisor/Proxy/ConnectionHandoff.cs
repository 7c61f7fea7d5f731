namespace Supervisor.Proxy;

/// <summary>
/// Moves HTTP/1.x clients to the supervisor that took over (a binary upgrade) without the race of a
/// keep-alive connection closed while idle just as its client sends the next request, which that client
/// sees as a failed request (wrk: a read error) unless it resends on its own. Once begun, each HTTP/1.x
/// response says <c>Connection: close</c>, so every connection in use closes right after an answer and
/// its client opens the next one to the new supervisor; connections left idle expire by the keep-alive
/// timeout as they always do. HTTP/2 needs none of this: the stop's GOAWAY tells its clients what was
/// not processed.
/// </summary>
internal sealed class ConnectionHandoff
{
    private readonly Func<object, Task> _closeIfBegun;
    private volatile bool _begun;

    public ConnectionHandoff()
    {
        // Decided just before the head goes out, not as the request comes in: a request already in flight
        // when the handover begins (a slow one) is answered with close too, and nothing a forwarder copies
        // from the worker can take it back. One delegate, the response as its state: nothing per request.
        _closeIfBegun = state =>
        {
            var response = (HttpResponse)state;
            // A 101 hands the connection to another protocol (a WebSocket), which ends it in its own time.
            if (_begun && response.StatusCode != StatusCodes.Status101SwitchingProtocols)
            {
                response.Headers.Connection = "close";
            }
            return Task.CompletedTask;
        };
    }

    public void Begin() => _begun = true;

    public Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        if (context.Request.Protocol is "HTTP/1.1" or "HTTP/1.0")
        {
            context.Response.OnStarting(_closeIfBegun, context.Response);
        }
        return next(context);
    }
}
