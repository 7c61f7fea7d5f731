namespace Supervisor.Proxy;

internal static class RequestMethods
{
    /// <summary>
    /// RFC 9110 9.2.2: a request whose intended effect is the same sent once or twice, so one whose
    /// connection was lost before any of its response may be sent again.
    /// </summary>
    public static bool IsIdempotent(string method) =>
        HttpMethods.IsGet(method) || HttpMethods.IsHead(method) || HttpMethods.IsOptions(method)
        || HttpMethods.IsTrace(method) || HttpMethods.IsPut(method) || HttpMethods.IsDelete(method);
}
