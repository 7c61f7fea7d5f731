using System.Globalization;
using System.Net;

namespace Supervisor.Configuration;

/// <summary>
/// One public address, in Gunicorn's <c>--bind</c> syntax: <c>HOST:PORT</c>, <c>[IPv6]:PORT</c>,
/// <c>:PORT</c> or a bare <c>HOST</c> (port 8000), <c>unix:PATH</c>, or <c>fd://N</c> (a listening socket
/// the supervisor was started with, as systemd's socket activation passes them); any of them after
/// <c>h2c:</c> for an address that speaks HTTP/2 with prior knowledge only.
/// </summary>
internal abstract record BindAddress
{
    public const int DefaultPort = 8000;

    public const string CleartextHttp2Prefix = "h2c:";

    /// <summary>
    /// HTTP/2 without TLS, with prior knowledge (RFC 9113 §3.3), and nothing else: what gRPC clients and
    /// h2c proxies (nginx's grpc_pass grpc://) speak. Kestrel serves cleartext HTTP/2 only on an address
    /// that serves no HTTP/1.1, so it is a separate address, not a second protocol on the same one.
    /// </summary>
    public bool CleartextHttp2 { get; init; }

    public static BindAddress Parse(string value)
    {
        var text = value.Trim();
        if (text.StartsWith("h2c://", StringComparison.Ordinal))
        {
            throw Invalid(value, "write h2c:HOST:PORT, like h2c:127.0.0.1:8001");
        }
        if (text.StartsWith(CleartextHttp2Prefix, StringComparison.Ordinal))
        {
            var inner = text[CleartextHttp2Prefix.Length..];
            return inner.StartsWith(CleartextHttp2Prefix, StringComparison.Ordinal)
                ? throw Invalid(value, "h2c: is given twice")
                : ParseAddress(inner, value) with { CleartextHttp2 = true };
        }
        return ParseAddress(text, value);
    }

    /// <summary>The address as --bind takes it, h2c: included.</summary>
    public sealed override string ToString() => (CleartextHttp2 ? CleartextHttp2Prefix : "") + Spelling();

    protected abstract string Spelling();

    private static BindAddress ParseAddress(string text, string value)
    {
        if (text.Length == 0)
        {
            throw Invalid(value, "it is empty");
        }
        if (text.StartsWith("unix:", StringComparison.Ordinal))
        {
            var path = text["unix:".Length..];
            if (path.Length == 0)
            {
                throw Invalid(value, "the socket path is missing");
            }
            return new UnixBind(Path.GetFullPath(path));
        }
        if (text.StartsWith("fd://", StringComparison.Ordinal))
        {
            // 0-2 are the standard streams, never a listening socket.
            return int.TryParse(text["fd://".Length..], NumberStyles.None, CultureInfo.InvariantCulture, out var descriptor) && descriptor >= 3
                ? new FdBind(descriptor)
                : throw Invalid(value, "fd:// takes the number of an inherited listening socket, 3 or more");
        }

        if (text.Contains("://", StringComparison.Ordinal))
        {
            // ASPNETCORE_URLS habits: the scheme comes from --certfile, not from the address.
            throw Invalid(value, "write HOST:PORT without a scheme, like 127.0.0.1:8000 (HTTPS is served when --certfile and --keyfile are given)");
        }

        string host;
        string? portText;
        if (text.StartsWith('['))
        {
            var close = text.IndexOf(']', StringComparison.Ordinal);
            if (close < 0)
            {
                throw Invalid(value, "the IPv6 address has no closing ']'");
            }
            host = text[1..close];
            var rest = text[(close + 1)..];
            portText = rest.Length == 0 ? null : rest.StartsWith(':') ? rest[1..] : throw Invalid(value, "expected ':' after ']'");
        }
        else
        {
            var colon = text.LastIndexOf(':');
            if (colon >= 0 && text.IndexOf(':', StringComparison.Ordinal) != colon)
            {
                throw Invalid(value, "write an IPv6 address in brackets, like [::1]:8000");
            }
            host = colon < 0 ? text : text[..colon];
            portText = colon < 0 ? null : text[(colon + 1)..];
        }

        var port = DefaultPort;
        if (portText is not null
            && (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out port) || port > 65535))
        {
            throw Invalid(value, $"'{portText}' is not a port number (0-65535)");
        }
        if (host.Length == 0)
        {
            host = "0.0.0.0"; // Gunicorn: ":8000" listens on all IPv4 interfaces.
        }
        if (host != "localhost" && !IsIpAddress(host))
        {
            throw Invalid(value, $"'{host}' is not an IP address (host names other than localhost are not resolved)");
        }
        return new TcpBind(host, port);
    }

    // IPAddress.TryParse accepts legacy forms such as "1.2.3" (1.2.0.3); a bind address must be spelled out.
    private static bool IsIpAddress(string host) =>
        IPAddress.TryParse(host, out var address)
        && (address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 || host.Split('.').Length == 4);

    private static SettingValueException Invalid(string value, string reason) =>
        new($"'{value}' is not an address: {reason}; use HOST:PORT, [IPV6]:PORT, unix:PATH or fd://N, each optionally after h2c:");
}

internal sealed record TcpBind(string Host, int Port) : BindAddress
{
    protected override string Spelling() => Host.Contains(':', StringComparison.Ordinal) ? $"[{Host}]:{Port}" : $"{Host}:{Port}";
}

internal sealed record UnixBind(string Path) : BindAddress
{
    protected override string Spelling() => $"unix:{Path}";
}

/// <summary>A listening socket the supervisor inherited as file descriptor <paramref name="Descriptor"/>.</summary>
internal sealed record FdBind(int Descriptor) : BindAddress
{
    protected override string Spelling() => $"fd://{Descriptor}";
}
