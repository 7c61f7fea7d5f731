namespace Supervisor.Proxy.Http2;

/// <summary>
/// The worker did not process the request (GOAWAY past its stream, or REFUSED_STREAM), so it may be
/// sent again, as RFC 9113 8.7 allows and HttpClient does.
/// </summary>
internal sealed class RefusedStreamException(string message) : HttpRequestException(message);
