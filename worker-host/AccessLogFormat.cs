using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Supervisor.WorkerHost;

/// <summary>
/// An access-log line in Gunicorn's syntax (<c>%(h)s %(l)s %(u)s %(t)s "%(r)s" ...</c>), compiled once into
/// its parts, so that writing a line is a walk over them and no format string is parsed per request.
/// </summary>
internal sealed class AccessLogFormat
{
    public const string GunicornDefault = "%(h)s %(l)s %(u)s %(t)s \"%(r)s\" %(s)s %(b)s \"%(f)s\" \"%(a)s\"";

    private const string AtomList = "h l u t r m U q H s B b f a T M D L p {header}i {header}o {variable}e";

    private readonly Part[] _parts;

    private AccessLogFormat(string text, Part[] parts)
    {
        Text = text;
        _parts = parts;
        UsesResponseBytes = parts.Any(part => part.Atom is 'b' or 'B');
    }

    public string Text { get; }

    /// <summary>True when a line needs the number of body bytes sent, which costs a counting stream per request.</summary>
    public bool UsesResponseBytes { get; }

    public static AccessLogFormat Parse(string text)
    {
        var parts = new List<Part>();
        var literal = new StringBuilder();
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] != '%')
            {
                literal.Append(text[i]);
                continue;
            }
            if (i + 1 < text.Length && text[i + 1] == '%')
            {
                literal.Append('%');
                i++;
                continue;
            }
            var close = text.IndexOf(")s", i, StringComparison.Ordinal);
            if (i + 1 >= text.Length || text[i + 1] != '(' || close < 0)
            {
                throw new FormatException($"has a '%' at position {i} that is not an atom; write atoms as %(h)s, and a literal percent sign as %%");
            }
            if (literal.Length > 0)
            {
                parts.Add(Part.Literal(literal.ToString()));
                literal.Clear();
            }
            parts.Add(ParseAtom(text[(i + 2)..close]));
            i = close + 1;
        }
        if (literal.Length > 0)
        {
            parts.Add(Part.Literal(literal.ToString()));
        }
        return new AccessLogFormat(text, [.. parts]);
    }

    /// <summary>Writes the line for one finished request.</summary>
    public string Render(HttpContext context, in AccessLogFacts facts)
    {
        var line = new StringBuilder(160);
        foreach (var part in _parts)
        {
            switch (part.Atom)
            {
                case null:
                    line.Append(part.Text);
                    break;
                case 'i':
                    line.Append(OrDash(context.Request.Headers[part.Text!].ToString()));
                    break;
                case 'o':
                    line.Append(OrDash(context.Response.Headers[part.Text!].ToString()));
                    break;
                case 'e':
                    line.Append(OrDash(part.Text));
                    break;
                default:
                    AppendAtom(line, part.Atom.Value, context, facts);
                    break;
            }
        }
        return line.ToString();
    }

    public override string ToString() => Text;

    private static void AppendAtom(StringBuilder line, char atom, HttpContext context, in AccessLogFacts facts)
    {
        var request = context.Request;
        var elapsed = facts.Duration;
        var micros = elapsed.Ticks / 10;
        switch (atom)
        {
            case 'h':
                line.Append(facts.ClientAddress?.ToString() ?? "-");
                break;
            case 'l':
                line.Append('-');
                break;
            case 'u':
                line.Append(BasicAuthUser(request.Headers.Authorization.ToString()) ?? "-");
                break;
            case 't':
                line.Append(facts.Time.ToString("'['dd'/'MMM'/'yyyy':'HH':'mm':'ss' '", CultureInfo.InvariantCulture));
                line.Append(facts.Time.Offset < TimeSpan.Zero ? '-' : '+').Append(facts.Time.Offset.Duration().ToString("hhmm", CultureInfo.InvariantCulture)).Append(']');
                break;
            case 'r':
                line.Append(request.Method).Append(' ').Append(RawTarget(context)).Append(' ').Append(request.Protocol);
                break;
            case 'm':
                line.Append(request.Method);
                break;
            case 'U':
                line.Append(request.Path.Value);
                break;
            case 'q':
                line.Append(request.QueryString.HasValue ? request.QueryString.Value![1..] : "");
                break;
            case 'H':
                line.Append(request.Protocol);
                break;
            case 's':
                line.Append(context.Response.StatusCode);
                break;
            case 'B':
                line.Append(facts.BytesSent);
                break;
            case 'b':
                line.Append(facts.BytesSent > 0 ? facts.BytesSent.ToString(CultureInfo.InvariantCulture) : "-");
                break;
            case 'f':
                line.Append(OrDash(request.Headers.Referer.ToString()));
                break;
            case 'a':
                line.Append(OrDash(request.Headers.UserAgent.ToString()));
                break;
            case 'T':
                line.Append(micros / 1_000_000);
                break;
            case 'M':
                line.Append(micros / 1000);
                break;
            case 'D':
                line.Append(micros);
                break;
            case 'L':
                line.Append(micros / 1_000_000).Append('.').Append((micros % 1_000_000).ToString("D6", CultureInfo.InvariantCulture));
                break;
            case 'p':
                line.Append(facts.WorkerPid is { } pid ? $"<{pid}>" : "-");
                break;
        }
    }

    private static Part ParseAtom(string name)
    {
        if (name.Length > 2 && name[0] == '{' && name[^2] == '}' && name[^1] is 'i' or 'o' or 'e')
        {
            var inner = name[1..^2];
            return name[^1] == 'e'
                ? new Part(Environment.GetEnvironmentVariable(inner) ?? Environment.GetEnvironmentVariable(inner.ToUpperInvariant()), 'e')
                : new Part(inner, name[^1]);
        }
        if (name.Length == 1 && "hlutrmUqHsBbfaTMDLp".Contains(name[0], StringComparison.Ordinal))
        {
            return new Part(null, name[0]);
        }
        throw new FormatException($"has an unknown atom %({name})s; the atoms are {AtomList}");
    }

    // The request target exactly as the client sent it, as Gunicorn's RAW_URI.
    private static string? RawTarget(HttpContext context) =>
        context.Features.Get<IHttpRequestFeature>()?.RawTarget is { Length: > 0 } raw ? raw : context.Request.Path + context.Request.QueryString;

    private static string? BasicAuthUser(string authorization)
    {
        if (!AuthenticationHeaderValue.TryParse(authorization, out var header) || !"Basic".Equals(header.Scheme, StringComparison.OrdinalIgnoreCase) || header.Parameter is null)
        {
            return null;
        }
        try
        {
            var credentials = Encoding.UTF8.GetString(Convert.FromBase64String(header.Parameter));
            var colon = credentials.IndexOf(':', StringComparison.Ordinal);
            return colon > 0 ? credentials[..colon] : null;
        }
        catch (FormatException)
        {
            return null;
        }
    }

    private static string OrDash(string? value) => string.IsNullOrEmpty(value) ? "-" : value;

    /// <summary>Literal text (Atom null), a one-letter atom, or a named header or variable (Atom i, o or e).</summary>
    private readonly record struct Part(string? Text, char? Atom)
    {
        public static Part Literal(string text) => new(text, null);
    }
}

/// <summary>What the access log knows of a finished request beyond its <see cref="HttpContext"/>.</summary>
internal readonly record struct AccessLogFacts(
    System.Net.IPAddress? ClientAddress,
    DateTimeOffset Time,
    TimeSpan Duration,
    long BytesSent,
    int? WorkerPid);
