using Microsoft.AspNetCore.WebUtilities;

namespace Supervisor.Proxy;

/// <summary>An answer the supervisor gives itself instead of a worker's: the status and, in one line, why.</summary>
internal static class Refusal
{
    public static Task WriteAsync(HttpContext context, int status, string reason)
    {
        context.Response.StatusCode = status;
        return context.Response.WriteAsync($"{status} {ReasonPhrases.GetReasonPhrase(status)}: {reason}\n");
    }
}
