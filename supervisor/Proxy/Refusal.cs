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

    /// <summary>A gRPC client reads its status from grpc-status, not the HTTP status: a trailers-only answer.</summary>
    public static Task WriteGrpcAsync(HttpContext context, GrpcStatus status, string reason)
    {
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "application/grpc";
        context.Response.Headers["grpc-status"] = ((int)status).ToString(System.Globalization.CultureInfo.InvariantCulture);
        context.Response.Headers["grpc-message"] = Uri.EscapeDataString(reason); // Percent-encoded, per the gRPC HTTP/2 spec.
        return Task.CompletedTask;
    }

    /// <summary>A gRPC request, by its content type (application/grpc, +proto, +json, ...).</summary>
    public static bool IsGrpc(HttpRequest request) =>
        request.ContentType?.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase) == true;
}

/// <summary>The gRPC status codes the supervisor answers with itself.</summary>
internal enum GrpcStatus
{
    Unimplemented = 12,
}
