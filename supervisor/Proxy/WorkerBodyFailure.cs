using Yarp.ReverseProxy.Forwarder;

namespace Supervisor.Proxy;

/// <summary>
/// A request body copy that the worker's side cancelled, which YARP blames on the client. When a worker
/// dies while YARP is reading a request body from the client for it, SocketsHttpHandler cancels the
/// copy (its HTTP/2 connection is gone); YARP counts a cancellation its own token did not cause as a
/// failed read from the client, <see cref="ForwarderError.RequestBodyClient"/>, and answers 400 to a
/// client that sent a good request and is still waiting (dotnet/yarp#1598 tells of the same ambiguity).
/// Seen under keep-alive POST load: a 400 about 20 ms after a worker was killed, once in ten kills.
/// </summary>
internal sealed class WorkerBodyFailure(Exception? exception) : IForwarderErrorFeature
{
    public ForwarderError Error => ForwarderError.RequestBodyDestination;

    public Exception? Exception { get; } = exception;

    /// <summary>
    /// Puts the blame where it belongs: the worker's, answered 502. A client's own failures are left as
    /// they are: one that went away (RequestAborted), a bad body (Kestrel's BadHttpRequestException, not
    /// a cancellation), a body too slow to come (YARP's activity timeout answers 408).
    /// </summary>
    public static void Correct(HttpContext context)
    {
        if (context.GetForwarderErrorFeature() is { Error: ForwarderError.RequestBodyClient, Exception: var exception }
            && CancelledCopy(exception)
            && !context.RequestAborted.IsCancellationRequested
            && !context.Response.HasStarted
            && context.Response.StatusCode == StatusCodes.Status400BadRequest)
        {
            context.Features.Set<IForwarderErrorFeature>(new WorkerBodyFailure(WorkersSide(exception)));
            context.Response.StatusCode = StatusCodes.Status502BadGateway;
        }
    }

    // YARP reports the body's exception first, then the one SendAsync threw: the worker's side, whose
    // reason ("Connection reset by peer") is the one to log.
    private static bool CancelledCopy(Exception? exception) =>
        (exception is AggregateException aggregate ? aggregate.InnerExceptions.FirstOrDefault() : exception) is OperationCanceledException;

    private static Exception? WorkersSide(Exception? exception) =>
        exception is AggregateException { InnerExceptions: [_, var sendFailure, ..] } ? sendFailure : exception;
}
