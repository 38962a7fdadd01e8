#pragma once
/// An allocator whose value-less construct() leaves trivial types uninitialised, so that
/// vector::resize does not zero elements about to be overwritten (a closed-form stretch writes
/// every step's end time right after sizing the vector).

#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace servesim {

template <class T>
struct DefaultInitAllocator : std::allocator<T> {
  using value_type = T;
  template <class U>
  struct rebind {
    using other = DefaultInitAllocator<U>;
  };
  DefaultInitAllocator() = default;
  template <class U>
  DefaultInitAllocator(const DefaultInitAllocator<U>&) noexcept {}

  template <class U>
  void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    std::allocator_traits<std::allocator<T>>::construct(static_cast<std::allocator<T>&>(*this), p,
                                                        std::forward<Args>(args)...);
  }
};

}  // namespace servesim
