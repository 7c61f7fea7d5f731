using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Supervisor.WorkerHost;

/// <summary>What the worker-host adds to the app's host while it is being built.</summary>
internal static class HostCustomization
{
    public static void Apply(object? builder, WorkerSettings settings)
    {
        switch (builder)
        {
            case HostApplicationBuilder applicationBuilder: // WebApplication.CreateBuilder, Host.CreateApplicationBuilder
                OverrideListenUrl(applicationBuilder.Configuration, settings);
                AddServices(applicationBuilder.Services, settings);
                break;
            case IHostBuilder hostBuilder: // Host.CreateDefaultBuilder().ConfigureWebHostDefaults(...)
                hostBuilder.ConfigureAppConfiguration((_, configuration) => OverrideListenUrl(configuration, settings));
                hostBuilder.ConfigureServices(services => AddServices(services, settings));
                break;
        }
    }

    // ASPNETCORE_URLS already points the app at its socket; an app that sets "urls" in its own
    // appsettings or with UseUrls would override that, so the last configuration source repeats it.
    private static void OverrideListenUrl(IConfigurationBuilder configuration, WorkerSettings settings)
    {
        if (settings.ListenUrl is { Length: > 0 } url)
        {
            configuration.AddInMemoryCollection([new KeyValuePair<string, string?>("urls", url)]);
        }
    }

    private static void AddServices(IServiceCollection services, WorkerSettings settings)
    {
        services.AddSingleton<IStartupFilter, ForwardedFromSupervisorStartupFilter>();
        if (settings.HeaderAllowance is { } allowance)
        {
            services.AddSingleton<IPostConfigureOptions<Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions>>(new HeaderAllowanceSetup(allowance));
        }
        if (settings.DataProtectionDirectory is { } keyDirectory)
        {
            // Registered whether or not the app uses DataProtection: unused options setups cost nothing.
            services.AddSingleton(provider => new SharedKeyRingSetup(keyDirectory, settings.ApplicationName, provider.GetRequiredService<ILoggerFactory>()));
            services.AddSingleton<IPostConfigureOptions<KeyManagementOptions>>(provider => provider.GetRequiredService<SharedKeyRingSetup>());
            services.AddSingleton<IPostConfigureOptions<DataProtectionOptions>>(provider => provider.GetRequiredService<SharedKeyRingSetup>());
        }
    }
}
