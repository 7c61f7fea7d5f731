namespace Supervisor.Proxy;

/// <summary>
/// The request limits Kestrel does not check itself, enforced before a worker is chosen, so an
/// over-limit request never reaches one: each header field's size (Gunicorn's --limit-request-field-size,
/// 431) and a declared body size over --limit-request-body (413). Kestrel itself answers an over-long
/// request line (414), too many or too large headers in all (431), and cuts a chunked body at the limit.
/// </summary>
internal sealed class RequestLimits(int maxFieldBytes, long maxBodyBytes)
{
    public Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        var request = context.Request;
        if (maxFieldBytes > 0 && LargestField(request.Headers) is { } field)
        {
            return RefuseAsync(context, StatusCodes.Status431RequestHeaderFieldsTooLarge, $"header field '{field}' is larger than {maxFieldBytes} bytes");
        }
        if (maxBodyBytes > 0 && request.ContentLength > maxBodyBytes)
        {
            return RefuseAsync(context, StatusCodes.Status413PayloadTooLarge, $"the body is larger than {maxBodyBytes} bytes");
        }
        return next(context);
    }

    // Gunicorn measures the field's line, "Name: value"; a repeated field is measured line by line.
    private string? LargestField(IHeaderDictionary headers)
    {
        foreach (var (name, values) in headers)
        {
            foreach (var value in values)
            {
                if (name.Length + 2 + (value?.Length ?? 0) > maxFieldBytes)
                {
                    return name;
                }
            }
        }
        return null;
    }

    private static Task RefuseAsync(HttpContext context, int status, string reason)
    {
        // The client may still be sending a body nobody will read: close the connection after answering.
        context.Response.Headers.Connection = "close";
        return Refusal.WriteAsync(context, status, reason);
    }
}
