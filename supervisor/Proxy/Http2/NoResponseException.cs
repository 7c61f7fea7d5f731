namespace Supervisor.Proxy.Http2;

/// <summary>
/// The connection was lost after the request reached the worker and before any of its response came:
/// the worker may or may not have processed it. An idempotent request may be sent again (RFC 9110
/// 9.2.2, as nginx's proxy_next_upstream does); any other is answered 502.
/// </summary>
internal sealed class NoResponseException(string message, Exception innerException) : HttpRequestException(message, innerException);
