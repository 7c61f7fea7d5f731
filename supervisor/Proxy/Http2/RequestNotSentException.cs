namespace Supervisor.Proxy.Http2;

/// <summary>
/// The worker cannot have processed the request: it refused the stream (REFUSED_STREAM, or a GOAWAY
/// below its id), the connection was lost before the request's HEADERS were handed to the socket, or
/// the worker could not be connected to at all. Such a request may be sent again, to this worker or to
/// another, without the client ever knowing (RFC 9113 8.7).
/// </summary>
internal sealed class RequestNotSentException(string message, bool workerUnreachable = false, Exception? innerException = null)
    : HttpRequestException(message, innerException)
{
    /// <summary>The worker's socket refused the connection or is gone: the worker should take no more requests.</summary>
    public bool WorkerUnreachable { get; } = workerUnreachable;
}
