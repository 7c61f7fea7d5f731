namespace Supervisor.Configuration;

/// <summary>
/// The default <c>--bind</c> from the variables a platform sets: Gunicorn's <c>PORT</c>, and the ones an
/// ASP.NET Core app alone would bind from. The official ASP.NET Core images set
/// <c>ASPNETCORE_HTTP_PORTS=8080</c>: without reading it, a supervisor as the container's entrypoint
/// would listen on 127.0.0.1:8000, out of reach from outside the container. As in ASP.NET Core,
/// <c>ASPNETCORE_URLS</c> comes before <c>ASPNETCORE_HTTP_PORTS</c>; both come after <c>PORT</c>.
/// </summary>
internal static class HostingVariables
{
    public const string Urls = "ASPNETCORE_URLS";
    public const string HttpPorts = "ASPNETCORE_HTTP_PORTS";

    public static readonly IReadOnlyList<string> BindVariables = [Urls, HttpPorts];

    /// <summary>The variable's text as <c>--bind</c> values; throws <see cref="SettingValueException"/> for what the supervisor cannot bind.</summary>
    public static IReadOnlyList<string> ToBindAddresses(string name, string text) => name switch
    {
        "PORT" => [$"0.0.0.0:{text.Trim()}"],
        Urls => [.. Split(text).Select(FromUrl)],
        HttpPorts => [.. Split(text).Select(port => $"0.0.0.0:{port}")],
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, "not a bind variable"),
    };

    private static string[] Split(string text) => text.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    // http://HOST:PORT as Kestrel reads it: + and * are every address (IPv4 here, as for PORT), the port
    // defaults to 80, a path is not part of the address. https:// needs a certificate the variable cannot give.
    private static string FromUrl(string url)
    {
        const string http = "http://";
        if (url.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
        {
            throw new SettingValueException($"'{url}' is HTTPS: the supervisor serves TLS with --certfile and --keyfile on a --bind address");
        }
        if (!url.StartsWith(http, StringComparison.OrdinalIgnoreCase))
        {
            throw new SettingValueException($"'{url}' is not an http:// URL");
        }
        var authority = url[http.Length..];
        if (authority.StartsWith("unix:", StringComparison.OrdinalIgnoreCase))
        {
            return authority;
        }
        authority = authority.Split('/')[0];
        var portAt = authority.LastIndexOf(':');
        var (host, port) = portAt > authority.LastIndexOf(']')
            ? (authority[..portAt], authority[(portAt + 1)..])
            : (authority, "80");
        return $"{(host is "+" or "*" ? "0.0.0.0" : host)}:{port}";
    }
}
